"""RGB-LM on the real LM-O images: recalls before/after (`iterpose eval`'s evaluator) per object, and time.

Usage::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_rgb_lm_lmo.py [--init kpt perturbed]

Reads ../shared/data/lmo and ../shared/data/lmo-init/{kpt,perturbed}_lmo-test.csv (exits with a message when
absent), refines every estimate with the default :class:`iterpose.refiners.RgbLM` (one call per image, as
``iterpose refine`` does), writes the refined CSVs to ``--work-dir`` and the numbers to
``benchmarks/results/rgb_lm_lmo.json`` after each initialisation (incrementally).
Time per object = the image's refine wall time / the objects refined in it; the median over images is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import iterpose
from iterpose.data import BopDataset, ResultsTable, read_results_csv, write_results_csv
from iterpose.metrics.evaluate import evaluate
from iterpose.refiners import RefineStatus, RgbLM, RgbLMConfig
from iterpose.refiners.dataset_refine import refine_results

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
KEYS = ("ad_0.1d", "add_0.1d", "adi_0.1d", "proj_5px", "rete_5deg_50mm", "ar_mssd", "ar_mspd")


def _slim(report) -> dict:
    d = report.to_json_dict()
    return {"n_targets": d["n_targets"], "recall": {k: d["recall"][k] for k in KEYS},
            "per_object": {o: {k: r[k] for k in ("ad_0.1d", "proj_5px")} for o, r in d["per_object"].items()}}


def _halves(ds, table, n_targets: int) -> dict:
    """AD@0.1d and Proj@5px on the even and the odd image ids separately (recall over each half's targets)."""
    targets = json.loads((ds.root / "test_targets_bop19.json").read_text())
    out = {}
    for h, name in ((0, "even"), (1, "odd")):
        n_half = sum(t["inst_count"] for t in targets if t["im_id"] % 2 == h)
        sel = np.asarray(table.im_id) % 2 == h
        sub = ResultsTable(*(np.asarray(x)[sel] for x in (table.scene_id, table.im_id, table.obj_id, table.score,
                                                          table.R, table.t_mm, table.time_s)))
        r = evaluate(ds, sub, progress=False).recall
        out[name] = {k: r[k] * n_targets / n_half for k in ("ad_0.1d", "proj_5px")}
        out[name]["n_targets"] = n_half
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--init", nargs="+", default=["kpt", "perturbed"])
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/iterpose_bench_rgb_lm"))
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rgb_lm_lmo.json")
    args = p.parse_args()
    lmo, init_dir = DATA / "lmo", DATA / "lmo-init"
    if not (lmo / "test_targets_bop19.json").exists():
        print(f"LM-O data not found at {lmo}; nothing to measure", file=sys.stderr)
        return 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    ds = BopDataset(lmo)
    cfg = RgbLMConfig()  # refine_results applies the BOP half-pixel shift of K (bop_pixel_shift=None: on for BOP)
    results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(),
                           "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default"),
                           "load_avg_at_start": os.getloadavg()[0]},
               "config": cfg.to_dict(), "inits": {}}
    objects = iterpose.load_objects(lmo / "models")
    refiner = RgbLM(objects, cfg)
    for name in args.init:
        csv = init_dir / f"{name}_lmo-test.csv"
        init = read_results_csv(csv)
        before = evaluate(ds, init, progress=False)
        t0 = time.perf_counter()
        res = refine_results(ds, init, refiner, progress=True)
        wall = time.perf_counter() - t0
        out_csv = args.work_dir / f"rgblm{name}_lmo-test.csv"
        write_results_csv(out_csv, res.table)
        after = evaluate(ds, out_csv, progress=False)
        counts = {}
        for (s, m), dt in res.per_image_s.items():
            sel = (init.scene_id == s) & (init.im_id == m)
            went_through = [int(c) for c in RefineStatus if c.went_through]  # failed images (-1) excluded
            n = int((np.isin(res.status, went_through) & sel).sum())
            if n:
                counts[(s, m)] = dt / n
        per_obj = sorted(counts.values())
        results["inits"][name] = {
            "csv": str(csv), "refined_csv": str(out_csv), "before": _slim(before), "after": _slim(after),
            "halves_before": _halves(ds, init, before.n_targets),
            "halves_after": _halves(ds, res.table, after.n_targets),
            "summary": {k: v for k, v in res.summary.__dict__.items()},
            "time_per_object_s": {"median": statistics.median(per_obj), "mean": sum(per_obj) / len(per_obj),
                                  "p90": per_obj[int(0.9 * (len(per_obj) - 1))]},
            "wall_s": wall,
        }
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        b, a = before.recall, after.recall
        print(f"{name}: AD {b['ad_0.1d']:.4f} -> {a['ad_0.1d']:.4f}, proj5 {b['proj_5px']:.4f} -> "
              f"{a['proj_5px']:.4f}, {1000 * statistics.median(per_obj):.0f} ms/object (median); "
              f"{res.summary.format()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
