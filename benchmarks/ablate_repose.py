"""RePOSE ablations on synthetic data at a small, equal training budget per variant.

Usage::

    PYTHONPATH=src python benchmarks/ablate_repose.py [--steps 300] [--runs ~/runs/ablation] [--threads 1]

Variants (each trained from the same seed on the 8 LM-O models, the default training config with ``--steps``
steps, then evaluated on the same synthetic scenes of ``bench_rgb_lm_synthetic.make_scene`` at 5° and 15° of
rotation noise):

- ``base``: the defaults (ImageNet trunk frozen, deep texture, learned damping, 5 iterations);
- ``rgb_texture``: the vertex colours as a fixed texture instead of the deep texture;
- ``fixed_damping``: a constant lambda instead of the damping network;
- ``scratch_trunk``: the trunk trained from random weights instead of the frozen ImageNet one;
- ``iterations_N``: the ``base`` model refined with N = 1, 2, 3, 5, 8 iterations (no retraining).

A variant whose run directory already holds ``final.pt`` is not retrained. Writes
``benchmarks/results/repose_ablations.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rgb_lm_synthetic import K_LMO, SYMMETRIC, lmo_objects, make_scene  # noqa: E402

from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.data.perturb import PerturbConfig, perturb_poses  # noqa: E402
from iterpose.metrics.batched import add_m, adi_m  # noqa: E402
from iterpose.refiners import load_refiner  # noqa: E402
from iterpose.refiners.repose import ReposeConfig  # noqa: E402
from iterpose.train import task_class  # noqa: E402
from iterpose.train.config import TrainConfig  # noqa: E402
from iterpose.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "base": {},
    "rgb_texture": {"texture": "rgb", "feature_channels": 3},
    "fixed_damping": {"damping": "fixed"},
    "scratch_trunk": {"trunk": "scratch", "trunk_frozen": False},
}


def evaluate(refiner, objects, levels, per_object, seed, iterations=None) -> dict:
    out = {}
    for li, level in enumerate(levels):
        rng = np.random.default_rng(seed + 1000 * li)
        gen = torch.Generator().manual_seed(seed + li)
        pert = PerturbConfig(rot_std_deg=level, trans_std_m=(0.01 * level / 15, 0.01 * level / 15, 0.05 * level / 15))
        ok0 = ok1 = n = 0
        for oid, model in objects.items():
            err = adi_m if oid in SYMMETRIC else add_m
            for _ in range(per_object):
                img, T_gt = make_scene(model, rng)
                T0 = perturb_poses(T_gt[None], pert, gen)
                res = refiner.refine(img[None], K_LMO[None], torch.tensor([oid]), T0, torch.tensor([0]),
                                     iterations=iterations)
                ok0 += float(err(T0, T_gt[None], model.vertices)[0]) < 0.1 * model.diameter_m
                ok1 += float(err(res.poses, T_gt[None], model.vertices)[0]) < 0.1 * model.diameter_m
                n += 1
        out[str(level)] = {"before": ok0 / n, "after": ok1 / n, "n": n}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--runs", type=Path, default=Path.home() / "runs" / "ablation")
    p.add_argument("--levels", nargs="+", type=float, default=[5.0, 15.0])
    p.add_argument("--per-object", type=int, default=4)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    apply_threads(args.threads)
    objects = lmo_objects()
    if objects is None:
        return 0
    out_json = ROOT / "benchmarks" / "results" / "repose_ablations.json"
    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    results.update({"steps": args.steps, "batch_size": args.batch_size, "levels": args.levels,
                    "per_object": args.per_object})
    results.setdefault("variants", {})
    task = task_class("repose")
    for name, change in VARIANTS.items():
        run = args.runs / name
        t0 = time.perf_counter()
        if not (run / "final.pt").is_file():
            cfg = TrainConfig(method="repose", steps=args.steps, batch_size=args.batch_size, seed=0,
                              model=dataclasses.replace(ReposeConfig(), **change))
            train(task, objects, cfg, run, resume=(run / "last.pt").is_file(), progress=False)
        train_s = time.perf_counter() - t0
        refiner = load_refiner(run / "final.pt", objects)
        results["variants"][name] = {"model_changes": change, "train_s_this_call": train_s,
                                     "recall": evaluate(refiner, objects, args.levels, args.per_object, 0)}
        out_json.write_text(json.dumps(results, indent=2) + "\n")
        print(name, results["variants"][name]["recall"], flush=True)
        if name == "base":
            for iters in (1, 2, 3, 5, 8):
                results["variants"][f"iterations_{iters}"] = {
                    "recall": evaluate(refiner, objects, args.levels, args.per_object, 0, iterations=iters)}
                out_json.write_text(json.dumps(results, indent=2) + "\n")
                print(f"iterations_{iters}", results["variants"][f"iterations_{iters}"]["recall"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
