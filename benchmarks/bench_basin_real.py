"""Convergence basins on the real LM-O dev images: the ground truth of every target perturbed with the DeepIM noise
at growing scales, refined by each method, ADD(-S)@0.1d and Proj@5px before and after.

Usage::

    PYTHONPATH=src python benchmarks/bench_basin_real.py --methods rgb-lm repose deepim deepim+rgb-lm \
        --weights repose=weights/lmo-repose.pt deepim=weights/lmo-deepim.pt [--levels 2.5 5 10 15 20 30] \
        [--threads 2] [--every 1] [--tag T] [--hypotheses H [--scorer FILE]] [--previous JSON]

The noise is the synthetic basin's (``bench_basin_synthetic.py``): Euler-angle std s and camera-frame translation
std (1, 1, 5) cm x s / 15, redrawn above 45°; s = 15 is the protocol of ``perturbed_lmo-test.csv`` (other draws).
Next to the synthetic basin it measures the sim-to-real gap of each method at each scale: same noise, real images
(clutter, occlusion, real colours) instead of renders. Every method refines the same initial poses. Reads
../shared/data/lmo (exits with a message when absent); writes ``benchmarks/results/basin_real[_<tag>].json`` and
``benchmarks/basin_real[_<tag>].png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_basin_synthetic import plot_basin  # noqa: E402
from bench_refine_lmo import _report, lmo_root  # noqa: E402

import iterpose  # noqa: E402
from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.data import BopDataset, ResultsTable  # noqa: E402
from iterpose.data.perturb import PerturbConfig, perturb_poses  # noqa: E402
from iterpose.data.units import T_co_to_Rt_mm  # noqa: E402
from iterpose.refiners import make_refiner  # noqa: E402
from iterpose.refiners.dataset_refine import refine_results  # noqa: E402
from iterpose.refiners.registry import learned_methods  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def ground_truth_table(ds: BopDataset, im_ids: set | None) -> ResultsTable:
    """Every ground-truth instance of the dataset's images (those of ``im_ids`` when given) as a results table."""
    rows = [(s, m, g) for s in ds.scene_ids for m, insts in sorted(ds.scene_gt(s).items())
            if im_ids is None or m in im_ids for g in insts]
    n = len(rows)
    return ResultsTable(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                        np.array([r[2].obj_id for r in rows]), np.ones(n), np.stack([r[2].R for r in rows]),
                        np.stack([r[2].t_mm for r in rows]), -np.ones(n))


def perturbed_table(gt: ResultsTable, level_deg: float, seed: int) -> ResultsTable:
    """``gt`` with the DeepIM noise scaled to ``level_deg`` (rotation std per Euler angle)."""
    config = PerturbConfig(rot_std_deg=level_deg, trans_std_m=(0.01 * level_deg / 15, 0.01 * level_deg / 15,
                                                               0.05 * level_deg / 15))
    T = perturb_poses(torch.from_numpy(gt.T_co()), config, torch.Generator().manual_seed(seed)).numpy()
    R, t_mm = T_co_to_Rt_mm(T)
    return ResultsTable(gt.scene_id, gt.im_id, gt.obj_id, gt.score, R, t_mm, gt.time_s)


def _plot(results: dict, path: Path) -> None:
    levels = sorted(results["levels"].values(), key=lambda e: e["rot_std_deg"])
    after = {name: [e["methods"][name]["ad_0.1d"] for e in levels] for name in levels[0]["methods"]}
    plot_basin([e["rot_std_deg"] for e in levels], [e["before"]["ad_0.1d"] for e in levels], after,
               f"convergence basin, real LM-O dev images ({levels[0]['n_targets']} targets)", path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=["rgb-lm", "repose", "deepim", "deepim+rgb-lm"])
    p.add_argument("--weights", nargs="*", default=["repose=weights/lmo-repose.pt", "deepim=weights/lmo-deepim.pt"],
                   help="METHOD=FILE for each learned method (a cascade uses its stages' files)")
    p.add_argument("--levels", nargs="+", type=float, default=[2.5, 5.0, 10.0, 15.0, 20.0, 30.0])
    p.add_argument("--every", type=int, default=1, help="keep every k-th image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--hypotheses", type=int, default=1,
                   help="rotated starts per object for every method (make_refiner's); the methods are then named "
                        "'<method> x<H>' in the results")
    p.add_argument("--scorer", type=Path, default=None,
                   help="with --hypotheses: pose-scorer weights ranking them; the methods are then '<method> x<H> "
                        "scored'")
    p.add_argument("--previous", type=Path, default=None,
                   help="an earlier output (same levels, seed and --every): its methods that are not in --methods are "
                        "copied, not re-run (e.g. the training-free RGB-LM after new weights of a learned method)")
    args = p.parse_args()
    apply_threads(args.threads)
    lmo = lmo_root()
    if lmo is None:
        return 0
    weights = dict(w.split("=", 1) for w in args.weights)
    ds = BopDataset(lmo)
    objects = iterpose.load_objects(lmo / "models")
    refiners = {}
    for name in args.methods:
        files = [Path(weights[s]) for s in learned_methods(name) if s in weights]
        key = name if args.hypotheses == 1 else f"{name} x{args.hypotheses}" + (" scored" if args.scorer else "")
        refiners[key] = make_refiner(name, objects, weights=files or None, hypotheses=args.hypotheses,
                                     scorer=args.scorer)
    im_ids = None
    if args.every > 1:
        im_ids = set(ds.image_ids(ds.scene_ids[0])[::args.every])
    gt = ground_truth_table(ds, im_ids)
    suffix = f"_{args.tag}" if args.tag else ""
    out_json = ROOT / "benchmarks" / "results" / f"basin_real{suffix}.json"
    results = {"weights": weights, "every": args.every, "seed": args.seed, "torch_threads": torch.get_num_threads(),
               "cpus": os.cpu_count(), "levels": {}}
    previous = {}
    if args.previous is not None:
        prev = json.loads(args.previous.read_text())
        if prev["every"] != args.every or prev["seed"] != args.seed:
            raise SystemExit(f"{args.previous}: made with other --every / --seed; cannot reuse it")
        previous = prev["levels"]
        results["copied_from"] = str(args.previous)
    for li, level in enumerate(args.levels):
        init = perturbed_table(gt, level, args.seed + li)
        before = _report(ds, init, im_ids)
        entry = {"rot_std_deg": level, "n_targets": before["n_targets"],
                 "before": {k: before["recall"][k] for k in ("ad_0.1d", "proj_5px")}, "methods": {}}
        for name, refiner in refiners.items():
            t0 = time.perf_counter()
            res = refine_results(ds, init, refiner, progress=False)
            after = _report(ds, res.table, im_ids)
            entry["methods"][name] = {"ad_0.1d": after["recall"]["ad_0.1d"], "proj_5px": after["recall"]["proj_5px"],
                                      "per_object_ad_0.1d": {o: v["ad_0.1d"] for o, v in after["per_object"].items()},
                                      "wall_s": time.perf_counter() - t0}
            print(f"{name:>14} noise {level:>4} deg: ADD(-S)@0.1d {entry['before']['ad_0.1d']:.3f} -> "
                  f"{after['recall']['ad_0.1d']:.3f}, Proj@5px {entry['before']['proj_5px']:.3f} -> "
                  f"{after['recall']['proj_5px']:.3f}", flush=True)
        old = previous.get(str(level), {}).get("methods", {})
        for name in sorted(set(old) - set(entry["methods"])):
            entry["methods"][name] = dict(old[name], copied_from=str(args.previous))
        results["levels"][str(level)] = entry
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(results, indent=2) + "\n")
    _plot(results, ROOT / "benchmarks" / f"basin_real{suffix}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
