"""RGB-LM's accept test as a guard on any refiner's results on the real LM-O images: recalls of a refined CSV with
and without the guard (a refined pose that fails `RgbLM.accept_test` against its initial pose is replaced by it).

Usage::

    PYTHONPATH=src python benchmarks/probe_accept_guard.py INIT_CSV REFINED_CSV [--tag NAME]

INIT_CSV: e.g. ../shared/data/lmo-init/kpt_lmo-test.csv; REFINED_CSV: the same rows refined (e.g. written by
`benchmarks/bench_refine_lmo.py --work-dir`). Writes ``benchmarks/results/guard_<tag>.json``. This is what the
``deepim+rgb-lm`` cascade does after its stages, applied offline to any result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

import iterpose
from iterpose.data import BopDataset, ResultsTable, read_results_csv
from iterpose.geometry.camera import bop_to_opencv_K
from iterpose.refiners.base import RefineBatch
from iterpose.refiners.rgb_lm import RgbLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import _report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def guard_passes(ds: BopDataset, init: ResultsTable, refined: ResultsTable, guard: RgbLM) -> np.ndarray:
    """``[n]`` bool per row: the refined pose passes RGB-LM's accept test against the initial one (False for rows
    whose initial pose is a placeholder or did not move)."""
    T0_all, T1_all = init.T_co(), refined.T_co()
    passed = np.zeros(len(init), dtype=bool)
    for s, m in sorted(set(zip(init.scene_id.tolist(), init.im_id.tolist()))):
        rows = np.nonzero((init.scene_id == s) & (init.im_id == m) & (T0_all[:, 2, 3] > 0.05)
                          & np.any(T0_all != T1_all, axis=(1, 2)))[0]
        if len(rows) == 0:
            continue
        image = torch.from_numpy(np.ascontiguousarray(ds.load_rgb(s, m))).permute(2, 0, 1)[None].float() / 255.0
        K = torch.tensor(bop_to_opencv_K(np.array(ds.camera_K(s, m), dtype=np.float64)), dtype=torch.float32)[None]
        batch = RefineBatch(images=image, K=K, object_ids=torch.tensor(init.obj_id[rows], dtype=torch.int64),
                            init_poses=torch.tensor(T0_all[rows], dtype=torch.float32),
                            image_index=torch.zeros(len(rows), dtype=torch.int64))
        with torch.no_grad():
            passed[rows] = guard.accept_test(batch, torch.tensor(T1_all[rows], dtype=torch.float32)).passed.numpy()
    return passed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("init_csv", type=Path)
    p.add_argument("refined_csv", type=Path)
    p.add_argument("--tag", default="probe")
    args = p.parse_args()
    lmo = DATA / "lmo"
    if not (lmo / "test_targets_bop19.json").exists():
        print(f"LM-O data not found at {lmo}; nothing to measure", file=sys.stderr)
        return 0
    torch.set_num_threads(1)
    ds = BopDataset(lmo)
    init, refined = read_results_csv(args.init_csv), read_results_csv(args.refined_csv)
    passed = guard_passes(ds, init, refined, RgbLM(iterpose.load_objects(lmo / "models")))
    guarded = ResultsTable(init.scene_id, init.im_id, init.obj_id, init.score,
                           np.where(passed[:, None, None], refined.R, init.R),
                           np.where(passed[:, None], refined.t_mm, init.t_mm), init.time_s)
    keys = ("ad_0.1d", "proj_5px", "ar_mssd", "ar_mspd")
    out = {"init": str(args.init_csv), "refined": str(args.refined_csv), "passed": int(passed.sum()),
           "moved": int(np.any(init.T_co() != refined.T_co(), axis=(1, 2)).sum())}
    for name, table in (("initial", init), ("refined", refined), ("guarded", guarded)):
        r = _report(ds, table, None)["recall"]
        out[name] = {k: round(r[k], 4) for k in keys}
        print(name, out[name])
    path = ROOT / "benchmarks" / "results" / f"guard_{args.tag}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{out['passed']} of {out['moved']} moved estimates pass the guard; {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
