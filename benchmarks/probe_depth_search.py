"""Can a score find the right depth on real images? Each refined pose is moved along its own viewing ray by a set of
relative steps (the projected centre stays) and a score picks one step per estimate.

Usage::

    PYTHONPATH=src python benchmarks/probe_depth_search.py INIT_CSV REFINED_CSV [--steps -0.04 ... 0.04] \
        [--scorer weights/lmo-scorer.pt] [--tag T]

INIT_CSV places the crops (RGB-LM's score is computed in crops around the initial pose, as an ensemble does);
REFINED_CSV holds the poses searched (e.g. the ensemble's result, written by `benchmarks/bench_refine_lmo.py
--work-dir`). Reported, as the share of estimates within 0.1 d by their own ADD(-S) error (ADD-S for symmetric
objects, 500 model points, nearest ground-truth instance of the object; compare the rows with each other): the
step 0 (the refined pose), the best step (knowing the truth), RGB-LM's score's pick, that pick with a penalty per
% of step, and the learned scorer's pick. Writes ``benchmarks/results/depth_search[_<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import lmo_root  # noqa: E402
from probe_ensemble_judge import gt_errors, image_batches  # noqa: E402

import iterpose  # noqa: E402
from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.data import BopDataset, read_results_csv  # noqa: E402
from iterpose.refiners.rgb_lm import RgbLM  # noqa: E402
from iterpose.refiners.scorer import load_scorer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PENALTIES = (0.001, 0.002, 0.005)  # score per % of step


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("init_csv", type=Path)
    p.add_argument("refined_csv", type=Path)
    p.add_argument("--steps", type=float, nargs="+", default=[-0.04, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04])
    p.add_argument("--scorer", type=Path, default=ROOT / "weights" / "lmo-scorer.pt")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    if 0.0 not in args.steps:
        p.error("--steps must include 0 (the refined pose itself)")
    apply_threads(args.threads)
    lmo = lmo_root()
    if lmo is None:
        return 0
    ds = BopDataset(lmo)
    objects = iterpose.load_objects(lmo / "models")
    judge, scorer = RgbLM(objects), load_scorer(args.scorer, objects)
    init, refined = read_results_csv(args.init_csv), read_results_csv(args.refined_csv)
    steps = np.array(args.steps)
    S = len(steps)
    T_ref = refined.T_co()
    colour, predicted, errors = (np.full((len(init), S), np.nan) for _ in range(3))
    for rows, batch in image_batches(ds, init):
        M = len(rows)
        cands = np.repeat(T_ref[rows][None], S, 0)  # [S, M, 4, 4]
        cands[:, :, :3, 3] *= (1.0 + steps)[:, None, None]
        c = torch.tensor(cands, dtype=torch.float32)
        with torch.no_grad():
            colour[rows] = judge.score_poses(batch, c).numpy().T
        predicted[rows] = scorer.predict_error(
            batch.images, batch.K.expand(S * M, 3, 3), [int(i) for i in batch.object_ids.repeat(S)],
            c.reshape(S * M, 4, 4), torch.zeros(S * M, dtype=torch.int64), batch.init_poses.repeat(S, 1, 1)
        ).view(S, M).numpy().T
        errors[rows] = gt_errors(ds, objects, init, rows, cands)
    valid = ~np.isnan(colour[:, 0])
    ok, colour, predicted = errors[valid] < 0.1, colour[valid], predicted[valid]
    idx = np.arange(len(ok))
    zero = int(np.nonzero(steps == 0.0)[0][0])
    out = {"n": int(valid.sum()), "steps": steps.tolist(), "refined": float(ok[:, zero].mean()),
           "best_step": float(ok.any(1).mean()), "colour": float(ok[idx, colour.argmax(1)].mean()),
           "colour_step_counts": np.bincount(colour.argmax(1), minlength=S).tolist(),
           "scorer": float(ok[idx, predicted.argmin(1)].mean())}
    for lam in PENALTIES:
        out[f"colour_penalty_{lam}"] = float(ok[idx, (colour - lam * np.abs(steps) / 0.01).argmax(1)].mean())
    print(json.dumps(out, indent=1))
    path = ROOT / "benchmarks" / "results" / f"depth_search{'_' + args.tag if args.tag else ''}.json"
    path.write_text(json.dumps({"init": str(args.init_csv), "refined": str(args.refined_csv), **out}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
