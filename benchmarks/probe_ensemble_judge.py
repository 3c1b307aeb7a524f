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
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

import iterpose
from iterpose.cli._common import apply_threads
from iterpose.data import BopDataset, ResultsTable, read_results_csv
from iterpose.data.bop import gt_T_co
from iterpose.geometry.camera import bop_to_opencv_K
from iterpose.refiners import make_refiner
from iterpose.refiners.base import RefineBatch
from iterpose.refiners.scorer import load_scorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import _report, lmo_root  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N_POINTS = 500


_POINTS: dict[int, np.ndarray] = {}


def _points(model) -> np.ndarray:
    """``[≤ N_POINTS, 3]`` model points (metres), a fixed sample per object."""
    if model.obj_id not in _POINTS:
        v = model.vertices.numpy().astype(np.float64)
        _POINTS[model.obj_id] = v[np.random.default_rng(0).choice(len(v), min(N_POINTS, len(v)), replace=False)]
    return _POINTS[model.obj_id]


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


def image_batches(ds: BopDataset, init: ResultsTable):
    """Yields ``(rows, batch)`` per image: the rows of ``init`` in it whose initial pose is real, and a
    :class:`RefineBatch` of them (the image, its OpenCV K, the initial poses); prints progress."""
    T0_all = init.T_co()
    groups = sorted(set(zip(init.scene_id.tolist(), init.im_id.tolist())))
    for gi, (s, m) in enumerate(groups):
        rows = np.nonzero((init.scene_id == s) & (init.im_id == m) & (T0_all[:, 2, 3] > 0.05))[0]
        if len(rows):
            image = torch.from_numpy(np.ascontiguousarray(ds.load_rgb(s, m))).permute(2, 0, 1)[None].float() / 255
            K = torch.tensor(bop_to_opencv_K(np.array(ds.camera_K(s, m), dtype=np.float64)), dtype=torch.float32)
            yield rows, RefineBatch(images=image, K=K[None], object_ids=torch.tensor(init.obj_id[rows]),
                                    init_poses=torch.tensor(T0_all[rows], dtype=torch.float32),
                                    image_index=torch.zeros(len(rows), dtype=torch.int64))
        print(f"\r{gi + 1}/{len(groups)} images", end="", flush=True)
    print()


def gt_errors(ds: BopDataset, objects, init: ResultsTable, rows: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """``[M, C]`` ADD(-S) / diameter of candidate poses ``cands [C, M, 4, 4]`` (metres) of ``init``'s ``rows`` (one
    image), against the nearest ground-truth instance of each row's object."""
    s, m = int(init.scene_id[rows[0]]), int(init.im_id[rows[0]])
    gt = ds.scene_gt(s)[m]
    out = np.empty((len(rows), cands.shape[0]))
    for j, r in enumerate(rows):
        model = objects[int(init.obj_id[r])]
        gts = [gt_T_co(g) for g in gt if g.obj_id == model.obj_id and not g.is_placeholder]
        for c in range(cands.shape[0]):
            out[j, c] = _err(_points(model), cands[c, j], gts, model.is_symmetric) / model.diameter_m
    return out


def collect(ds: BopDataset, init: ResultsTable, cands: list[ResultsTable], deepim_weights: Path,
            scorer_weights: Path) -> dict:
    objects = iterpose.load_objects(ds.root / "models")
    judge = make_refiner("rgb-lm", objects)
    deepim = make_refiner("deepim", objects, weights=deepim_weights)
    scorer = load_scorer(scorer_weights, objects)
    Tc_all = np.stack([c.T_co() for c in cands])  # [C, n, 4, 4]
    C, n = Tc_all.shape[:2]
    feats = {k: np.full((n, C), np.nan) for k in ("colour", "move_deepim", "move_rgblm", "scorer", "err")}
    valid = np.zeros(n, dtype=bool)
    for rows, batch in image_batches(ds, init):
        valid[rows] = True
        M = len(rows)
        cand = torch.tensor(Tc_all[:, rows], dtype=torch.float32)
        with torch.no_grad():
            feats["colour"][rows] = judge.score_poses(batch, cand).numpy().T
            feats["scorer"][rows] = scorer.predict_error(
                batch.images, batch.K.expand(C * M, 3, 3), [int(i) for i in batch.object_ids.repeat(C)],
                cand.reshape(C * M, 4, 4), torch.zeros(C * M, dtype=torch.int64), batch.init_poses.repeat(C, 1, 1)
            ).view(C, M).numpy().T
            for c in range(C):
                for name, ref in (("move_deepim", deepim), ("move_rgblm", judge)):
                    T1 = ref.refine(batch.images, batch.K, batch.object_ids, cand[c], batch.image_index).poses
                    for j, r in enumerate(rows):
                        model = objects[int(init.obj_id[r])]
                        moved = _move(_points(model), Tc_all[c, r], T1[j].double().numpy())
                        feats[name][r, c] = moved / model.diameter_m
        feats["err"][rows] = gt_errors(ds, objects, init, rows, Tc_all[:, rows])
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
        halves = [correct[half & f["valid"]].mean() for half in (even, ~even)]
        print(f"{name:24s} ad_0.1d {r['ad_0.1d']:.4f} proj {r['proj_5px']:.4f} "
              f"(own err<0.1d even/odd {halves[0]:.4f}/{halves[1]:.4f})")


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
    apply_threads(args.threads)
    lmo = lmo_root()
    if lmo is None:
        return 0
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
