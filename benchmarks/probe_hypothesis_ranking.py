"""How much of multi-hypothesis refinement's potential the outline ranking uses, on the real LM-O dev images.

Usage::

    PYTHONPATH=src python benchmarks/probe_hypothesis_ranking.py --method deepim+rgb-lm \
        --weights weights/lmo-deepim-coarse.pt [--hypotheses 7] [--angle 20] [--every 4] [--init kpt perturbed] \
        [--scorer weights/lmo-scorer.pt]

For every estimate of the chosen images that matches a ground-truth instance (the same object in the image; the
closest one), :meth:`MultiHypothesisRefiner.candidates` refines the initial pose and its rotated copies; per
target the ADD(-S) error (ADD-S for symmetric objects, model vertices, in diameters) of each candidate says
whether it is within 0.1 d. Reported: the initial pose's own refinement (H = 1), the candidate the refiner keeps
(outline ranking), the wrapped refiner's own score as the ranking instead, RGB-LM's score (what an ensemble keeps
the highest of; :meth:`RgbLM.score_poses`, crops at the initial pose), with ``--scorer`` the learned scorer's
ranking and RGB-LM's score minus ``COLOUR_SCORER_WEIGHT`` × log(predicted error), and the oracle (any candidate
within 0.1 d): the gap between the kept and the oracle is what a better ranking could add. Not the BOP evaluator
(targets here are estimates matched to ground truth, not BOP19's matching), so compare the rows with each other. Reads
../shared/data/lmo (exits with a message when absent); writes ``benchmarks/results/hypothesis_ranking[_<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import DATA, lmo_root  # noqa: E402

import iterpose  # noqa: E402
from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.data import BopDataset, read_results_csv  # noqa: E402
from iterpose.data.bop import gt_T_co  # noqa: E402
from iterpose.geometry.camera import bop_to_opencv_K  # noqa: E402
from iterpose.metrics.pose_error import add, adi  # noqa: E402
from iterpose.refiners import RefineStatus, make_refiner  # noqa: E402
from iterpose.refiners.base import RefineBatch  # noqa: E402
from iterpose.refiners.rgb_lm import RgbLM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLOUR_SCORER_WEIGHT = 0.1  # RGB-LM's score spans ~0.1 between candidates; log errors span ~1-2


def candidate_errors(ds: BopDataset, csv: Path, refiner, objects: dict, every: int) -> list[dict]:
    """Per matched estimate: ADD(-S) / diameter of each candidate, outline, own and RGB-LM scores, statuses."""
    judge = RgbLM(objects)
    init = read_results_csv(csv)
    T_all = init.T_co()
    pts = {k: 1000.0 * o.vertices.double().numpy()[:: max(1, len(o.vertices) // 1000)] for k, o in objects.items()}
    images = sorted(set(zip(init.scene_id.tolist(), init.im_id.tolist())))[::every]
    out = []
    for s, m in images:
        gts: dict[int, list[np.ndarray]] = {}
        for g in ds.scene_gt(s).get(m, []):
            gts.setdefault(g.obj_id, []).append(gt_T_co(g))
        rows = [i for i in np.nonzero((init.scene_id == s) & (init.im_id == m))[0]
                if int(init.obj_id[i]) in gts and T_all[i][2, 3] > 0.05]
        if not rows:
            continue
        rgb = np.ascontiguousarray(ds.load_rgb(s, m))
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        K = torch.tensor(bop_to_opencv_K(np.array(ds.camera_K(s, m), dtype=np.float64)), dtype=torch.float32)
        batch = RefineBatch(images=image, K=K[None], object_ids=torch.tensor([int(init.obj_id[i]) for i in rows]),
                            init_poses=torch.tensor(T_all[rows], dtype=torch.float32),
                            image_index=torch.zeros(len(rows), dtype=torch.int64))
        cands = refiner.candidates(batch, refiner.default_iterations)
        P = cands.poses.double().numpy()
        with torch.no_grad():
            colour = judge.score_poses(batch, cands.poses.to(torch.float32).transpose(0, 1)).T.numpy()  # [M, H]
        own = cands.output.scores.reshape(len(rows), -1).cpu().numpy()
        for j, i in enumerate(rows):
            k = int(init.obj_id[i])
            G = min(gts[k], key=lambda G: float(np.linalg.norm(T_all[i][:3, 3] - G[:3, 3])))
            metric = adi if objects[k].is_symmetric else add
            d = 1000.0 * objects[k].diameter_m
            errs = [metric(p[:3, :3], 1000.0 * p[:3, 3:], G[:3, :3], 1000.0 * G[:3, 3:], pts[k]) / d for p in P[j]]
            row = {"scene_id": s, "im_id": m, "obj_id": k, "errors_rel": errs,
                   "outline": cands.outline_scores[j].tolist(), "own_score": own[j].tolist(),
                   "colour": colour[j].tolist(), "status": cands.status[j].tolist()}
            if cands.predicted_errors is not None:
                row["scorer"] = (-cands.predicted_errors[j]).tolist()
                row["colour_scorer"] = (colour[j] - COLOUR_SCORER_WEIGHT
                                        * np.log(cands.predicted_errors[j].numpy())).tolist()
            out.append(row)
    return out


def summarise(rows: list[dict]) -> dict:
    """Recall within 0.1 d: H = 1, outline-ranked (the refiner's choice), own-score-ranked, oracle."""
    ok = np.array([r["errors_rel"] for r in rows]) < 0.1
    status = np.array([r["status"] for r in rows])
    allowed = status == int(RefineStatus.OK)
    allowed[:, 0] = True

    def ranked(key: str) -> float:
        s = np.where(allowed, np.array([r[key] for r in rows]), -1.0)
        return float(ok[np.arange(len(ok)), s.argmax(1)].mean())

    out = {"n": len(rows), "one_start": float(ok[:, 0].mean()), "outline_ranked": ranked("outline"),
           "own_score_ranked": ranked("own_score"), "colour_ranked": ranked("colour")}
    if rows and "scorer" in rows[0]:
        out["scorer_ranked"] = ranked("scorer")
        out["colour_scorer_ranked"] = ranked("colour_scorer")
    return {**out, "oracle": float((ok & allowed).any(1).mean()), "oracle_any": float(ok.any(1).mean())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", default="deepim+rgb-lm")
    p.add_argument("--weights", type=Path, nargs="*", default=[Path("weights/lmo-deepim-coarse.pt")])
    p.add_argument("--hypotheses", type=int, default=7)
    p.add_argument("--angle", type=float, default=20.0)
    p.add_argument("--init", nargs="+", default=["kpt", "perturbed"])
    p.add_argument("--every", type=int, default=4, help="keep every k-th image")
    p.add_argument("--scorer", type=Path, default=None, help="pose-scorer weights: adds its ranking")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    apply_threads(args.threads)
    lmo = lmo_root()
    if lmo is None:
        return 0
    ds = BopDataset(lmo)
    objects = iterpose.load_objects(lmo / "models")
    refiner = make_refiner(args.method, objects, weights=args.weights or None, hypotheses=args.hypotheses,
                           hypothesis_angle_deg=args.angle, scorer=args.scorer)
    results = {"method": args.method, "scorer": None if args.scorer is None else str(args.scorer),
               "hypotheses": args.hypotheses, "angle_deg": args.angle, "every": args.every,
               "inits": {}}
    out_json = ROOT / "benchmarks" / "results" / f"hypothesis_ranking{'_' + args.tag if args.tag else ''}.json"
    for name in args.init:
        t0 = time.perf_counter()
        rows = candidate_errors(ds, DATA / "lmo-init" / f"{name}_lmo-test.csv", refiner, objects, args.every)
        summary = summarise(rows)
        summary["wall_s"] = time.perf_counter() - t0
        results["inits"][name] = {"summary": summary, "rows": rows}
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in summary.items()), flush=True)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
