"""Convergence basins of several refiners on the same synthetic LM-O scenes: ADD(-S)@0.1d before/after vs the
initial error, and recall per iteration; one plot for all methods.

Usage::

    PYTHONPATH=src python benchmarks/bench_basin_synthetic.py --methods rgb-lm repose \
        --weights repose=weights/lmo-repose.pt [--per-object 4] [--levels 2.5 5 10 15 20 30] [--threads 1]

The scenes and the noise are those of ``bench_rgb_lm_synthetic.py`` (its ``make_scene``: each LM-O model alone at
a random upper-hemisphere viewpoint 0.6-1.1 m away, LM-O camera, 640 x 480, Lambert shading, procedural
background, colour jitter, noise; DeepIM perturbation with rotation std s and translation std (1, 1, 5) cm x
s / 15), extended to 20 and 30 degrees; every method refines the same scenes from the same initial poses.
Writes ``benchmarks/results/basin_synthetic[_<tag>].json`` and ``benchmarks/basin_synthetic[_<tag>].png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
from iterpose.refiners import make_refiner  # noqa: E402
from iterpose.refiners.registry import learned_methods  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=["rgb-lm", "repose"])
    p.add_argument("--weights", nargs="*", default=[],
                   help="METHOD=FILE for the learned methods (a cascade takes its stages' files)")
    p.add_argument("--levels", nargs="+", type=float, default=[2.5, 5.0, 10.0, 15.0, 20.0, 30.0])
    p.add_argument("--per-object", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    apply_threads(args.threads)
    objects = lmo_objects()
    if objects is None:
        return 0
    weights = dict(w.split("=", 1) for w in args.weights)
    refiners = {m: make_refiner(m, objects, weights=[weights[s] for s in learned_methods(m) if s in weights] or None)
                for m in args.methods}
    suffix = f"_{args.tag}" if args.tag else ""
    out_json = ROOT / "benchmarks" / "results" / f"basin_synthetic{suffix}.json"
    results = {"objects": sorted(objects), "per_object": args.per_object, "weights": weights,
               "torch_threads": torch.get_num_threads(), "levels": {}}
    for li, level in enumerate(args.levels):
        rng = np.random.default_rng(args.seed + 1000 * li)
        gen = torch.Generator().manual_seed(args.seed + li)
        pert = PerturbConfig(rot_std_deg=level, trans_std_m=(0.01 * level / 15, 0.01 * level / 15,
                                                               0.05 * level / 15))
        cases = []
        for oid, model in objects.items():
            for _ in range(args.per_object):
                img, T_gt = make_scene(model, rng)
                cases.append((oid, img, T_gt, perturb_poses(T_gt[None], pert, gen)))
        entry = {"rot_std_deg": level, "trans_std_m": list(pert.trans_std_m), "n": len(cases), "methods": {}}
        for name, refiner in refiners.items():
            ok0, ok1, per_iter, times = [], [], [], []
            for oid, img, T_gt, T0 in cases:
                model = objects[oid]
                err = adi_m if oid in SYMMETRIC else add_m
                t0 = time.perf_counter()
                out = refiner.refine(img[None], K_LMO[None], torch.tensor([oid]), T0, torch.tensor([0]))
                times.append(time.perf_counter() - t0)
                rel = lambda T: float(err(T, T_gt[None], model.vertices)[0]) / model.diameter_m  # noqa: E731
                ok0.append(rel(T0) < 0.1)
                ok1.append(rel(out.poses) < 0.1)
                per_iter.append([rel(out.trace[k]) < 0.1 for k in range(out.trace.shape[0])])
            n = len(ok0)
            entry["methods"][name] = {
                "recall_before": sum(ok0) / n, "recall_after": sum(ok1) / n,
                "recall_per_iteration_before_accept_test": [sum(r[k] for r in per_iter) / n
                                                            for k in range(len(per_iter[0]))],
                "time_per_object_s_median": statistics.median(times)}
            r = entry["methods"][name]
            print(f"{name:>8} noise {level:>4} deg: ADD(-S)@0.1d {r['recall_before']:.3f} -> {r['recall_after']:.3f} "
                  f"(n={n}, {1000 * r['time_per_object_s_median']:.0f} ms/object)", flush=True)
        results["levels"][str(level)] = entry
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(results, indent=2) + "\n")
    _plot(results, ROOT / "benchmarks" / f"basin_synthetic{suffix}.png")
    return 0


def plot_basin(levels_deg: list, before: list, after: dict, title: str, path: Path) -> None:
    """ADD(-S)@0.1d recall against the initial rotation noise: ``before`` (one value per level) dashed, then one
    curve per method of ``after`` (``{name: [recall per level]}``); written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(levels_deg, before, "k--", label="initial")
    for name, ys in after.items():
        ax.plot(levels_deg, ys, "o-", label=name)
    ax.set_xlabel("initial rotation noise (std per Euler angle, deg)")
    ax.set_ylabel("ADD(-S) < 0.1 d")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot(results: dict, path: Path) -> None:
    levels = sorted(results["levels"].values(), key=lambda e: e["rot_std_deg"])
    before = [e["methods"][next(iter(e["methods"]))]["recall_before"] for e in levels]
    after = {name: [e["methods"][name]["recall_after"] for e in levels] for name in levels[0]["methods"]}
    plot_basin([e["rot_std_deg"] for e in levels], before, after, "convergence basin, synthetic LM-O scenes", path)


if __name__ == "__main__":
    sys.exit(main())
