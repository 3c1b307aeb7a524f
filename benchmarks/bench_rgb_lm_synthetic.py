"""RGB-LM's convergence basin on synthetic scenes of the LM-O models: ADD(-S)@0.1d before/after vs initial error,
and recall per iteration.

Usage::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_rgb_lm_synthetic.py [--per-object 4]

Scenes: each LM-O model (../shared/data/lmo/models; falls back to the generated example object when absent) at a
random upper-hemisphere viewpoint 0.6-1.1 m away (LM-O camera, 640 x 480), rendered with Lambert shading over a
procedural background with noise, plus random gain/bias per channel. Initial poses: DeepIM perturbation with
rotation std s in {2.5, 5, 10, 15} degrees and translation std (1, 1, 5) cm x s / 15. ADD-S for the symmetric
objects (10, 11). Results go to ``benchmarks/results/rgb_lm_synthetic.json`` after each noise level.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import iterpose
from iterpose.data.backgrounds import fast_procedural_background
from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.geometry import look_at_T_co
from iterpose.mesh import example_object
from iterpose.metrics.batched import add_m, adi_m
from iterpose.refiners import RgbLM, RgbLMConfig
from iterpose.render import render_objects

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
K_LMO = torch.tensor([[572.4114, 0.0, 325.2611], [0.0, 573.57043, 242.04899], [0.0, 0.0, 1.0]])
H, W = 480, 640
LEVELS_DEG = (2.5, 5.0, 10.0, 15.0)
SYMMETRIC = {10, 11}


def lmo_objects() -> dict | None:
    """The LM-O models of ../shared/data (None, with a message, when they are absent)."""
    models_dir = DATA / "lmo" / "models"
    if not models_dir.is_dir():
        print(f"LM-O models not found at {models_dir}; nothing to measure", file=sys.stderr)
        return None
    return iterpose.load_objects(models_dir)


def make_scene(model, rng: np.random.Generator):
    """``(image [3, H, W], T_gt [4, 4])``."""
    el = np.radians(rng.uniform(10, 80))
    az = rng.uniform(0, 2 * np.pi)
    dist = rng.uniform(0.6, 1.1)
    eye = dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    T = look_at_T_co(torch.tensor(eye, dtype=torch.float32), torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    T[:2, 3] += torch.tensor(rng.uniform(-0.12, 0.12, 2), dtype=torch.float32) * dist  # off-centre
    r = render_objects([model], T[None], K_LMO, H, W)
    bg = torch.from_numpy(fast_procedural_background(H, W, rng)).permute(2, 0, 1)
    gain = torch.tensor(rng.uniform(0.8, 1.2, 3), dtype=torch.float32)[:, None, None]
    bias = torch.tensor(rng.uniform(-0.05, 0.05, 3), dtype=torch.float32)[:, None, None]
    img = torch.where(r.mask[0], r.rgb[0] * gain + bias, bg)
    img = img + torch.from_numpy(rng.normal(0, 0.02, img.shape).astype(np.float32))
    return img.clamp(0, 1), T


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-object", type=int, default=4, help="scenes per object and noise level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rgb_lm_synthetic.json")
    args = p.parse_args()
    models_dir = DATA / "lmo" / "models"
    objects = iterpose.load_objects(models_dir) if models_dir.is_dir() else {1: example_object(1)}
    cfg = RgbLMConfig()
    refiner = RgbLM(objects, cfg)
    results = {"objects": sorted(objects), "config": cfg.to_dict(), "per_object": args.per_object,
               "torch_threads": torch.get_num_threads(), "levels": {}}
    for li, level in enumerate(LEVELS_DEG):
        rng = np.random.default_rng(args.seed + 1000 * li)
        gen = torch.Generator().manual_seed(args.seed + li)
        pert = PerturbConfig(rot_std_deg=level, trans_std_m=(0.01 * level / 15, 0.01 * level / 15, 0.05 * level / 15))
        ok0, ok1, per_iter, times, statuses = [], [], [], [], []
        by_obj: dict[int, list] = {}
        for oid, model in objects.items():
            pts = model.vertices
            err = adi_m if oid in SYMMETRIC else add_m
            for _ in range(args.per_object):
                img, T_gt = make_scene(model, rng)
                T0 = perturb_poses(T_gt[None], pert, gen)
                t0 = time.perf_counter()
                out = refiner.refine(img[None], K_LMO[None], torch.tensor([oid]), T0, torch.tensor([0]))
                times.append(time.perf_counter() - t0)
                e0 = float(err(T0, T_gt[None], pts)[0]) / model.diameter_m
                e1 = float(err(out.poses, T_gt[None], pts)[0]) / model.diameter_m
                per_iter.append([float(err(out.trace[k], T_gt[None], pts)[0]) / model.diameter_m < 0.1
                                 for k in range(out.trace.shape[0])])
                ok0.append(e0 < 0.1)
                ok1.append(e1 < 0.1)
                statuses.append(int(out.status[0]))
                by_obj.setdefault(oid, []).append((e0 < 0.1, e1 < 0.1))
        n = len(ok0)
        results["levels"][str(level)] = {
            "rot_std_deg": level, "trans_std_m": list(pert.trans_std_m), "n": n,
            "recall_before": sum(ok0) / n, "recall_after": sum(ok1) / n,
            "recall_per_iteration_before_accept_test": [sum(r[k] for r in per_iter) / n
                                                        for k in range(len(per_iter[0]))],
            "kept_initial": sum(s in (1, 2) for s in statuses) / n,  # KEPT_INITIAL_WORSE, DIVERGED
            "depth_only": sum(s == 8 for s in statuses) / n,  # DEPTH_ONLY
            "per_object": {str(o): {"before": sum(a for a, _ in v) / len(v), "after": sum(b for _, b in v) / len(v)}
                           for o, v in by_obj.items()},
            "time_per_object_s_median": statistics.median(times),
        }
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        r = results["levels"][str(level)]
        print(f"noise {level:>4} deg: ADD(-S)@0.1d {r['recall_before']:.3f} -> {r['recall_after']:.3f} "
              f"(n={n}, kept initial {r['kept_initial']:.2f}, depth only {r['depth_only']:.2f}, "
              f"{1000 * r['time_per_object_s_median']:.0f} ms/object)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
