"""Where pose estimates go wrong on LM-O: rotation, image-plane and depth errors against the ground truth, per
object, for one or more results CSVs (initial or refined).

Usage::

    PYTHONPATH=src python benchmarks/diagnose_pose_errors.py ../shared/data/lmo-init/perturbed_lmo-test.csv \
        /tmp/x/deepim_lmoperturbed_lmo-test.csv [--json benchmarks/results/pose_errors_T.json]

For every estimate with a ground-truth instance of its object in its image (the closest one when there are
several): the rotation error (degrees; not symmetry-aware, so eggbox and glue read high), the camera-frame x/y
error and the signed depth error z_est - z_gt (mm). ADD(-S)@0.1d needs, for a 100 mm object, a mean point error
below 10 mm, so these say which part of the pose keeps a method from it.

``--what-if`` adds the counterfactual: the share of estimates within 0.1 diameter ADD(-S) (ADD-S for symmetric
objects, 1000 model vertices) as they are, and with one part replaced by the ground truth's: the depth (the
translation scaled along the estimate's own ray to the true depth, so the projected centre stays), the image-plane
position (the true centre's ray at the estimate's depth), the rotation, the whole translation. Whichever
replacement lifts the share most is what a refiner has to get right. Reads ../shared/data/lmo (exits with a
message when absent).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import DATA  # noqa: E402

import iterpose  # noqa: E402
from iterpose.data import BopDataset, read_results_csv  # noqa: E402
from iterpose.data.bop import gt_T_co  # noqa: E402
from iterpose.metrics.batched import add_m, adi_m  # noqa: E402


def matched_poses(ds: BopDataset, csv: Path) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(obj_id, T_est, T_gt)`` for every estimate with a ground-truth instance of its object in its image (the
    closest one by translation when there are several); ``[4, 4]`` metres."""
    gt: dict[tuple[int, int, int], list[np.ndarray]] = {}
    for s in ds.scene_ids:
        for m, insts in ds.scene_gt(s).items():
            for g in insts:
                gt.setdefault((s, m, g.obj_id), []).append(gt_T_co(g))
    out = []
    for r in read_results_csv(csv).rows():
        cands = gt.get((r.scene_id, r.im_id, r.obj_id))
        if cands:
            T = r.T_co()
            out.append((r.obj_id, T, min(cands, key=lambda G: float(np.linalg.norm(T[:3, 3] - G[:3, 3])))))
    return out


def pose_errors(ds: BopDataset, csv: Path) -> np.ndarray:
    """``[M, 5]`` rows (obj_id, rotation error deg, xy error mm, signed depth error mm, ground-truth depth mm)."""
    rows = []
    for obj_id, T, G in matched_poses(ds, csv):
        cos = (np.trace(T[:3, :3] @ G[:3, :3].T) - 1) / 2
        dt = 1000.0 * (T[:3, 3] - G[:3, 3])
        rows.append((obj_id, np.degrees(np.arccos(np.clip(cos, -1, 1))), np.linalg.norm(dt[:2]), dt[2],
                     1000.0 * G[2, 3]))
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


WHAT_IF = ("as estimated", "true depth", "true image position", "true rotation", "true translation")


def with_truth(T: np.ndarray, G: np.ndarray, part: str) -> np.ndarray:
    """``T`` (``[4, 4]``, metres) with one part taken from the ground truth ``G`` (one of ``WHAT_IF``). An estimate
    that is not in front of the camera (a failure placeholder at depth 0) has no ray: its depth and image position
    stay as they are."""
    out = T.copy()
    if part in ("true depth", "true image position") and T[2, 3] <= 0:
        return out
    if part == "true depth":
        out[:3, 3] = T[:3, 3] * (G[2, 3] / T[2, 3])
    elif part == "true image position":
        out[:3, 3] = G[:3, 3] * (T[2, 3] / G[2, 3])
    elif part == "true rotation":
        out[:3, :3] = G[:3, :3]
    elif part == "true translation":
        out[:3, 3] = G[:3, 3]
    elif part != "as estimated":
        raise ValueError(f"with_truth: unknown part {part!r}; one of {WHAT_IF}")
    return out


def what_if(matched: list[tuple[int, np.ndarray, np.ndarray]], objects: dict, points: int = 1000) -> dict:
    """Share of ``matched`` within 0.1 diameter ADD(-S), for each part of ``WHAT_IF`` replaced by the truth."""
    hits = {part: [] for part in WHAT_IF}
    for obj_id in sorted({m[0] for m in matched}):
        rows = [m for m in matched if m[0] == obj_id]
        model = objects[obj_id]
        verts = model.vertices.double()
        pts = verts[torch.linspace(0, len(verts) - 1, min(points, len(verts))).long()]
        metric = adi_m if model.is_symmetric else add_m
        G = torch.from_numpy(np.stack([g for _, _, g in rows]))
        for part in WHAT_IF:
            T = torch.from_numpy(np.stack([with_truth(t, g, part) for _, t, g in rows]))
            hits[part].append((metric(T, G, pts) / model.diameter_m < 0.1).numpy())
    return {part: float(np.concatenate(h).mean()) for part, h in hits.items()}


def summarise(err: np.ndarray) -> dict:
    """Medians and means per object and over all rows."""
    def one(e: np.ndarray) -> dict:
        near = e[:, 1] < 30
        return {"n": int(len(e)), "rot_deg_median": float(np.median(e[:, 1])),
                "xy_mm_median": float(np.median(e[:, 2])), "abs_z_mm_median": float(np.median(np.abs(e[:, 3]))),
                "z_mm_mean": float(np.mean(e[:, 3])), "abs_z_rel_median": float(np.median(np.abs(e[:, 3]) / e[:, 4])),
                "rot_below_10deg": float(np.mean(e[:, 1] < 10)),
                # the signed depth bias of the near-correct estimates (rotation within 30 deg), in % of the depth
                "z_rel_pct_median_within_30deg": float(np.median(100 * e[near, 3] / e[near, 4])) if near.any()
                else float("nan")}
    out = {"all": one(err)}
    for o in sorted(set(err[:, 0].astype(int).tolist())):
        out[str(o)] = one(err[err[:, 0] == o])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv", type=Path, nargs="+")
    p.add_argument("--json", type=Path, default=None, help="write the summaries here")
    p.add_argument("--what-if", action="store_true",
                   help="also ADD(-S)@0.1d with the depth / image position / rotation / translation made true")
    args = p.parse_args()
    lmo = DATA / "lmo"
    if not (lmo / "test_targets_bop19.json").exists():
        print(f"LM-O data not found at {lmo}; nothing to measure", file=sys.stderr)
        return 0
    ds = BopDataset(lmo)
    objects = iterpose.load_objects(lmo / "models") if args.what_if else None
    out = {}
    for csv in args.csv:
        s = out[str(csv)] = summarise(pose_errors(ds, csv))
        print(f"{csv}\n  obj    n  rot°(med)  xy mm(med)  |z| mm(med)  z mm(mean)  rot<10°  z % (med, rot<30°)")
        for k, v in s.items():
            print(f"  {k:>3} {v['n']:4d} {v['rot_deg_median']:10.1f} {v['xy_mm_median']:11.1f} "
                  f"{v['abs_z_mm_median']:12.1f} {v['z_mm_mean']:+11.1f} {v['rot_below_10deg']:8.2f} "
                  f"{v['z_rel_pct_median_within_30deg']:+19.2f}")
        if objects is not None:
            s["what_if_ad_0.1d"] = w = what_if(matched_poses(ds, csv), objects)
            print("  ADD(-S)@0.1d " + ", ".join(f"{k}: {v:.3f}" for k, v in w.items()))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
