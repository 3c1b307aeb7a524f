"""Which signals tell, per object, which of several refined poses is the better one? Features of every candidate
on the real LM-O images, for judging an ensemble offline.

Usage::

    PYTHONPATH=src python benchmarks/probe_ensemble_judge.py INIT_CSV CAND_CSV [CAND_CSV ...] \
        --deepim weights/lmo-deepim.pt --out /tmp/judge.npz

For every estimate whose initial pose is real, and every candidate (the same row of each CAND_CSV, e.g. written by
`benchmarks/bench_refine_lmo.py --work-dir`), it records:

- ``colour``: RGB-LM's score of the candidate (what `EnsembleRefiner` keeps the highest of), crops placed at the
  initial pose;
- ``move_deepim`` / ``move_rgblm``: how far DeepIM / RGB-LM move the candidate when started from it (mean
  model-point displacement in object diameters): a candidate at the truth should be near a fixed point of both;
- ``scorer``: the learned pose scorer's predicted error (``weights/lmo-scorer.pt``, reference pose: the initial one);
- ``err``: the candidate's ADD(-S) error in diameters against the nearest ground-truth instance of its object
  (symmetric objects: ADD-S), for reading the features against the truth.

Writes the arrays to ``--out`` (``[n, C]`` each, plus ``rows``, ``im_id``, ``obj_id``). Selection rules are read with
``--rules`` on a written file, which builds each rule's table and prints `iterpose eval`'s recalls.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

import iterpose
from iterpose.data import BopDataset, ResultsTable, read_results_csv
from iterpose.geometry.camera import bop_to_opencv_K
from iterpose.refiners import make_refiner
from iterpose.refiners.base import RefineBatch
from iterpose.refiners.scorer import load_scorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import _report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
N_POINTS = 500


def _points(objects) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for k, m in objects.items():
        v = m.vertices.numpy().astype(np.float64)
        out[k] = v[rng.choice(len(v), min(N_POINTS, len(v)), replace=False)]
    return out


def _gt_T(g) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = g.R, g.t_mm / 1000.0
    return T


def _move(pts: np.ndarray, Ta: np.ndarray, Tb: np.ndarray) -> float:
    """Mean distance (metres) between the points moved by ``Ta`` and by ``Tb``."""
    a = pts @ Ta[:3, :3].T + Ta[:3, 3]
    b = pts @ Tb[:3, :3].T + Tb[:3, 3]
    return float(np.linalg.norm(a - b, axis=1).mean())


def _err(pts: np.ndarray, T: np.ndarray, gts: list[np.ndarray], symmetric: bool) -> float:
    """ADD (or ADD-S) distance in metres to the nearest ground-truth instance."""
    best = np.inf
    a = pts @ T[:3, :3].T + T[:3, 3]
    for G in gts:
        b = pts @ G[:3, :3].T + G[:3, 3]
        d = cKDTree(b).query(a)[0].mean() if symmetric else np.linalg.norm(a - b, axis=1).mean()
        best = min(best, d)
    return float(best)


def collect(ds: BopDataset, init: ResultsTable, cands: list[ResultsTable], deepim_weights: Path,
            scorer_weights: Path) -> dict:
    objects = iterpose.load_objects(ds.root / "models")
    judge = make_refiner("rgb-lm", objects)
    deepim = make_refiner("deepim", objects, weights=deepim_weights)
    pts = _points(objects)
    symmetric = {k: bool(len(m.symmetries_discrete) or m.symmetries_continuous) for k, m in objects.items()}
    T0_all = init.T_co()
    Tc_all = np.stack([c.T_co() for c in cands])  # [C, n, 4, 4]
    C, n = Tc_all.shape[:2]
    scorer = load_scorer(scorer_weights, objects)
    feats = {k: np.full((n, C), np.nan) for k in ("colour", "move_deepim", "move_rgblm", "scorer", "err")}
    valid = np.zeros(n, dtype=bool)
    groups = sorted(set(zip(init.scene_id.tolist(), init.im_id.tolist())))
    for gi, (s, m) in enumerate(groups):
        rows = np.nonzero((init.scene_id == s) & (init.im_id == m) & (T0_all[:, 2, 3] > 0.05))[0]
        if len(rows) == 0:
            continue
        valid[rows] = True
        image = torch.from_numpy(np.ascontiguousarray(ds.load_rgb(s, m))).permute(2, 0, 1)[None].float() / 255.0
        K = torch.tensor(bop_to_opencv_K(np.array(ds.camera_K(s, m), dtype=np.float64)), dtype=torch.float32)[None]
        ids = torch.tensor(init.obj_id[rows], dtype=torch.int64)
        batch = RefineBatch(images=image, K=K, object_ids=ids, init_poses=torch.tensor(T0_all[rows], dtype=torch.float32),
                            image_index=torch.zeros(len(rows), dtype=torch.int64))
        cand = torch.tensor(Tc_all[:, rows], dtype=torch.float32)
        with torch.no_grad():
            feats["colour"][rows] = judge.score_poses(batch, cand).numpy().T
            M = len(rows)
            feats["scorer"][rows] = scorer.predict_error(
                image, K.expand(C * M, 3, 3), [int(i) for i in ids.repeat(C)], cand.reshape(C * M, 4, 4),
                torch.zeros(C * M, dtype=torch.int64), batch.init_poses.repeat(C, 1, 1)).view(C, M).numpy().T
            for c in range(C):
                for name, ref in (("move_deepim", deepim), ("move_rgblm", judge)):
                    out = ref.refine(image, K, ids, cand[c], torch.zeros(len(rows), dtype=torch.int64))
                    T1 = out.poses.double().numpy()
                    for j, r in enumerate(rows):
                        o = int(init.obj_id[r])
                        feats[name][r, c] = _move(pts[o], Tc_all[c, r], T1[j]) / objects[o].diameter_m
        gt = ds.scene_gt(s)[m]
        for r in rows:
            o = int(init.obj_id[r])
            gts = [_gt_T(g) for g in gt if g.obj_id == o and not g.is_placeholder]
            for c in range(C):
                feats["err"][r, c] = _err(pts[o], Tc_all[c, r], gts, symmetric[o]) / objects[o].diameter_m
        print(f"\r{gi + 1}/{len(groups)} images", end="", flush=True)
    print()
    feats.update(valid=valid, im_id=init.im_id.copy(), obj_id=init.obj_id.copy())
    return feats


def _pick(init: ResultsTable, cands: list[ResultsTable], choice: np.ndarray) -> ResultsTable:
    R = np.stack([c.R for c in cands])
    t = np.stack([c.t_mm for c in cands])
    idx = np.arange(len(init))
    return ResultsTable(init.scene_id, init.im_id, init.obj_id, init.score, R[choice, idx], t[choice, idx],
                        init.time_s)


def rules(ds: BopDataset, init: ResultsTable, cands: list[ResultsTable], f: dict) -> None:
    colour, md, mr, sc, err = (np.nan_to_num(f[k], nan=-1.0 if k == "colour" else 9.0)
                               for k in ("colour", "move_deepim", "move_rgblm", "scorer", "err"))
    print("oracle (within 0.1 d by own error):", np.mean((err.min(1) < 0.1)[f["valid"]]).round(4))
    options = {f"cand{c}": np.full(len(init), c) for c in range(colour.shape[1])}
    options["colour"] = colour.argmax(1)
    options["oracle"] = err.argmin(1)
    for lam in (0.5, 1, 2, 4, 8):
        options[f"colour-{lam}*(md+mr)"] = (colour - lam * (md + mr)).argmax(1)
        options[f"colour-{lam}*md"] = (colour - lam * md).argmax(1)
    options["min scorer"] = sc.argmin(1)
    for lam in (0.02, 0.05, 0.1, 0.2):
        options[f"colour-{lam}*log(scorer)"] = (colour - lam * np.log(sc)).argmax(1)
    options["min md+mr"] = (md + mr).argmin(1)
    options["min md"] = md.argmin(1)
    options["min mr"] = mr.argmin(1)
    even = np.isin(f["im_id"], np.unique(f["im_id"])[::2])
    for name, ch in options.items():
        correct = err[np.arange(len(init)), ch] < 0.1
        r = _report(ds, _pick(init, cands, ch), None)["recall"]
        print(f"{name:24s} ad_0.1d {r['ad_0.1d']:.4f} proj {r['proj_5px']:.4f} "
              f"(own err<0.1d even/odd {correct[even & f['valid']].mean():.4f}/{correct[~even & f['valid']].mean():.4f})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("init_csv", type=Path)
    p.add_argument("cand_csvs", type=Path, nargs="+")
    p.add_argument("--deepim", type=Path, default=ROOT / "weights" / "lmo-deepim.pt")
    p.add_argument("--scorer", type=Path, default=ROOT / "weights" / "lmo-scorer.pt")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--rules", action="store_true", help="read --out and print each selection rule's recalls")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    lmo = DATA / "lmo"
    if not (lmo / "test_targets_bop19.json").exists():
        print(f"LM-O data not found at {lmo}; nothing to measure", file=sys.stderr)
        return 0
    torch.set_num_threads(args.threads)
    ds = BopDataset(lmo)
    init = read_results_csv(args.init_csv)
    cands = [read_results_csv(c) for c in args.cand_csvs]
    if not args.rules:
        feats = collect(ds, init, cands, args.deepim, args.scorer)
        np.savez(args.out, **feats)
        print(f"wrote {args.out}")
    rules(ds, init, cands, dict(np.load(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
