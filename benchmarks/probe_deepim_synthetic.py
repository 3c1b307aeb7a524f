"""DeepIM on its own training distribution: synthetic LM-O batches made exactly as in training (the shipped
recipe's scenes and augmentation), one noise level at a time, with a choice of background; ADD(-S)@0.1d before and
after, and the signed depth error after.

Usage::

    PYTHONPATH=src python benchmarks/probe_deepim_synthetic.py --weights weights/lmo-deepim.pt \
        [--config weights/lmo-deepim.phase2.yaml] [--backgrounds clutter photo] [--levels 5 15] [--batches 6]

Next to ``bench_basin_real.py`` (the same noise on the real dev images) it separates what the model has not learnt
(in-domain numbers) from what does not transfer (real minus synthetic), and it tests a background as a cause of
the gap: if the trained model does equally well on a background it never saw, that background is not what it
fails on. Writes ``benchmarks/results/deepim_synthetic_probe[_<tag>].json``. Needs ../shared/data/lmo/models.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import DATA  # noqa: E402

import iterpose  # noqa: E402
from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.metrics.batched import add_m, adi_m  # noqa: E402
from iterpose.refiners.deepim.config import DeepimConfig  # noqa: E402
from iterpose.train import config as train_config  # noqa: E402
from iterpose.train.synth_batches import InitNoise, SynthBatchSource  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "lmo-deepim.pt")
    p.add_argument("--config", type=Path, default=ROOT / "weights" / "lmo-deepim.phase2.yaml",
                   help="the training config whose scenes and augmentation to use")
    p.add_argument("--backgrounds", nargs="+", default=["clutter", "photo"])
    p.add_argument("--levels", nargs="+", type=float, default=[5.0, 15.0],
                   help="rotation std per Euler angle; translation std (1, 1, 5) cm x level / 15")
    p.add_argument("--batches", type=int, default=6, help="batches of 8 images per level and background")
    p.add_argument("--iterations", type=int, default=None, help="default: the weights file's")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    apply_threads(args.threads)
    models_dir = DATA / "lmo" / "models"
    if not models_dir.is_dir():
        print(f"LM-O models not found at {models_dir}; nothing to measure", file=sys.stderr)
        return 0
    refiner = iterpose.load_refiner(args.weights)
    model, iterations = refiner.net, args.iterations or refiner.default_iterations
    objects = iterpose.load_objects(models_dir)
    cfg = train_config.config_from_dict(train_config.load_config_file(args.config), DeepimConfig)
    out = {"weights": str(args.weights), "config": str(args.config), "iterations": iterations, "results": []}
    for bg in args.backgrounds:
        for level in args.levels:
            noise = InitNoise(levels=((level, 0.01 * level / 15, 0.01 * level / 15, 0.05 * level / 15),))
            source = SynthBatchSource(list(objects.values()), dataclasses.replace(cfg.synth, background=bg), noise,
                                      cfg.augment, batch_size=8, seed=12345)
            ok0, ok1, dz, rz0, rz1 = [], [], [], [], []
            for step in range(args.batches):
                b = source.batch(step)
                with torch.no_grad():
                    T = model.refine(b.images, b.K[b.image_index], b.object_ids, b.T_init, b.image_index,
                                     iterations)[-1]
                for i, oid in enumerate(b.object_ids):
                    obj = objects[oid]
                    err = adi_m if obj.is_symmetric else add_m
                    for poses, ok in ((b.T_init, ok0), (T, ok1)):
                        ok.append(float(err(poses[i:i + 1], b.T_gt[i:i + 1], obj.vertices)[0]) < 0.1 * obj.diameter_m)
                    dz.append(1000.0 * float(T[i, 2, 3] - b.T_gt[i, 2, 3]))
                    rz0.append(float(b.T_init[i, 2, 3] / b.T_gt[i, 2, 3]) - 1)
                    rz1.append(float(T[i, 2, 3] / b.T_gt[i, 2, 3]) - 1)
            # how much of the initial relative depth error is kept (slope of a line fit, as for the real images)
            slope, intercept = np.polyfit(rz0, rz1, 1)
            r = {"background": bg, "rot_std_deg": level, "n": len(ok0), "ad_before": float(np.mean(ok0)),
                 "ad_after": float(np.mean(ok1)), "z_err_mm_mean": float(np.mean(dz)),
                 "abs_z_err_mm_median": float(np.median(np.abs(dz))),
                 "abs_rel_z_err_median_before": float(np.median(np.abs(rz0))),
                 "abs_rel_z_err_median_after": float(np.median(np.abs(rz1))),
                 "rel_z_err_slope": float(slope), "rel_z_err_intercept": float(intercept)}
            out["results"].append(r)
            print(f"{bg:>8} {level:4.1f}°  n={r['n']}  ADD(-S)@0.1d {r['ad_before']:.3f} -> {r['ad_after']:.3f}  "
                  f"depth error after: mean {r['z_err_mm_mean']:+.1f} mm, median |.| {r['abs_z_err_mm_median']:.1f} mm; "
                  f"relative: median |.| {100 * r['abs_rel_z_err_median_before']:.2f} % -> "
                  f"{100 * r['abs_rel_z_err_median_after']:.2f} %, slope {slope:.2f}",
                  flush=True)
    name = "deepim_synthetic_probe" + (f"_{args.tag}" if args.tag else "")
    path = ROOT / "benchmarks" / "results" / f"{name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
