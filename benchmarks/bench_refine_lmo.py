"""Any refiner on the real LM-O images: recalls before/after (`iterpose eval`'s evaluator), per object, and time.

Usage::

    PYTHONPATH=src python benchmarks/bench_refine_lmo.py --method repose --weights weights/lmo-repose.pt \
        [--init kpt perturbed] [--threads 1] [--every 1] [--hypotheses 7 --hypothesis-angle 20]
        [--scorer weights/lmo-scorer.pt]

Reads ../shared/data/lmo and ../shared/data/lmo-init/{kpt,perturbed}_lmo-test.csv (exits with a message when
absent), refines every estimate through `iterpose.refiners.dataset_refine.refine_results` (what `iterpose refine`
runs: one call per image, BOP pixel shift on), writes the refined CSVs to ``--work-dir`` and the numbers to
``benchmarks/results/<method>_lmo[_<tag>].json``. ``--every k`` keeps every k-th image (a quick look during
training; the recalls are then over those images' targets only). Time per object = the image's refine wall time /
the objects refined in it (median over images).
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
from iterpose.cli._common import apply_threads
from iterpose.data import BopDataset, ResultsTable, read_results_csv, write_results_csv
from iterpose.metrics.evaluate import evaluate
from iterpose.refiners import make_refiner
from iterpose.refiners.dataset_refine import refine_results

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
KEYS = ("ad_0.1d", "add_0.1d", "adi_0.1d", "proj_5px", "rete_5deg_50mm", "ar_mssd", "ar_mspd")


def lmo_root() -> Path | None:
    """``../shared/data/lmo`` when it holds the LM-O test targets, else None after saying so on stderr (the
    benchmarks on real images skip cleanly without the data)."""
    lmo = DATA / "lmo"
    if not (lmo / "test_targets_bop19.json").exists():
        print(f"LM-O data not found at {lmo}; nothing to measure", file=sys.stderr)
        return None
    return lmo


def parse_probe_args(p: argparse.ArgumentParser, default_threads: int | None = None
                     ) -> tuple[argparse.Namespace, Path | None]:
    """The start every probe on the real images shares: adds ``--threads`` and ``--tag`` to ``p``, parses the
    command line, applies the thread count and returns ``(args, lmo_root())`` (the probe exits 0 when the second
    is None)."""
    p.add_argument("--threads", type=int, default=default_threads)
    p.add_argument("--tag", default="", help="suffix of the output JSON name")
    args = p.parse_args()
    apply_threads(args.threads)
    return args, lmo_root()


def write_result_json(stem: str, tag: str, results: dict) -> Path:
    """Write ``results`` to ``benchmarks/results/<stem>[_<tag>].json``, say so, return the path."""
    out = ROOT / "benchmarks" / "results" / f"{stem}{'_' + tag if tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return out


def _subset(table: ResultsTable, keep: np.ndarray) -> ResultsTable:
    return ResultsTable(*(np.asarray(x)[keep] for x in (table.scene_id, table.im_id, table.obj_id, table.score,
                                                          table.R, table.t_mm, table.time_s)))


def _report(ds, table, im_ids: set | None) -> dict:
    """Recalls over the targets of ``im_ids`` (all images when None), overall and per object."""
    targets = json.loads((ds.root / "test_targets_bop19.json").read_text())
    rep = evaluate(ds, table, progress=False).to_json_dict()
    if im_ids is None:
        n_sub = rep["n_targets"]
    else:
        n_sub = sum(t["inst_count"] for t in targets if t["im_id"] in im_ids)
    scale = rep["n_targets"] / n_sub
    out = {"n_targets": n_sub, "recall": {k: rep["recall"][k] * scale for k in KEYS}}
    per_obj = {}
    for o, r in rep["per_object"].items():
        n_all = sum(t["inst_count"] for t in targets if str(t["obj_id"]) == str(o))
        n_o = n_all if im_ids is None else sum(t["inst_count"] for t in targets
                                               if str(t["obj_id"]) == str(o) and t["im_id"] in im_ids)
        if n_o:
            per_obj[o] = {k: r[k] * n_all / n_o for k in ("ad_0.1d", "proj_5px", "ar_mssd", "ar_mspd") if k in r}
    out["per_object"] = per_obj
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", default="repose")
    p.add_argument("--weights", type=Path, nargs="+", default=None, help="weights file(s) (two for deepim+repose)")
    p.add_argument("--init", nargs="+", default=["kpt", "perturbed"])
    p.add_argument("--every", type=int, default=1, help="keep every k-th image (quick looks)")
    p.add_argument("--iterations", type=int, default=None, help="iterations (default: the method's)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--hypotheses", type=int, default=1, help="rotated starts per object (make_refiner's)")
    p.add_argument("--hypothesis-angle", dest="hypothesis_angle", type=float, default=20.0)
    p.add_argument("--scorer", type=Path, default=None, help="pose-scorer weights ranking the hypotheses")
    p.add_argument("--tag", default="", help="suffix of the output JSON name")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/iterpose_bench_lmo"))
    args = p.parse_args()
    apply_threads(args.threads)
    lmo, init_dir = DATA / "lmo", DATA / "lmo-init"
    if not (lmo / "test_targets_bop19.json").exists():
        print(f"LM-O data not found at {lmo}; nothing to measure", file=sys.stderr)
        return 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    name = args.method.replace("-", "_").replace(",", "_or_") + "_lmo" + (f"_{args.tag}" if args.tag else "")
    out_json = ROOT / "benchmarks" / "results" / f"{name}.json"
    ds = BopDataset(lmo)
    objects = iterpose.load_objects(lmo / "models")
    refiner = make_refiner(args.method, objects, weights=args.weights, iterations=args.iterations,
                           hypotheses=args.hypotheses, hypothesis_angle_deg=args.hypothesis_angle, scorer=args.scorer)
    results = {"method": args.method, "weights": None if args.weights is None else [str(w) for w in args.weights],
               "hypotheses": args.hypotheses, "hypothesis_angle_deg": args.hypothesis_angle,
               "scorer": None if args.scorer is None else str(args.scorer),
               "every": args.every, "iterations": refiner.default_iterations,
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(), "load_avg_at_start": os.getloadavg()[0]},
               "inits": {}}
    for init_name in args.init:
        csv = init_dir / f"{init_name}_lmo-test.csv"
        init = read_results_csv(csv)
        im_ids = None
        if args.every > 1:
            im_ids = set(sorted(set(np.asarray(init.im_id).tolist()))[::args.every])
            init = _subset(init, np.isin(np.asarray(init.im_id), sorted(im_ids)))
        before = _report(ds, init, im_ids)
        t0 = time.perf_counter()
        res = refine_results(ds, init, refiner, progress=True)
        wall = time.perf_counter() - t0
        out_csv = args.work_dir / f"{name}{init_name}_lmo-test.csv"
        write_results_csv(out_csv, res.table)
        after = _report(ds, res.table, im_ids)
        per_obj_s = []
        for (s, m), dt in res.per_image_s.items():
            sel = (init.scene_id == s) & (init.im_id == m)
            n = int((sel & (res.status >= 0)).sum())
            if n:
                per_obj_s.append(dt / n)
        per_img = sorted(res.per_image_s.values())
        results["inits"][init_name] = {
            "csv": str(csv), "refined_csv": str(out_csv), "before": before, "after": after,
            "summary": {k: v for k, v in res.summary.__dict__.items()},
            "time_per_image_s": {"median": statistics.median(per_img)},
            "time_per_object_s": {"median": statistics.median(per_obj_s)}, "wall_s": wall}
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(results, indent=2) + "\n")
        b, a = before["recall"], after["recall"]
        print(f"{init_name}: AD {b['ad_0.1d']:.4f} -> {a['ad_0.1d']:.4f}, proj5 {b['proj_5px']:.4f} -> "
              f"{a['proj_5px']:.4f}, MSSD {b['ar_mssd']:.4f} -> {a['ar_mssd']:.4f}, MSPD {b['ar_mspd']:.4f} -> "
              f"{a['ar_mspd']:.4f}; {1000 * statistics.median(per_img):.0f} ms/image; {res.summary.format()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
