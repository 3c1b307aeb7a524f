"""The pose scorer on unseen synthetic scenes: how often it orders two candidates of one object correctly.

Usage::

    PYTHONPATH=src python benchmarks/bench_scorer_synth.py --weights weights/lmo-scorer.pt \
        [--config weights/lmo-scorer.train.yaml] [--batches 16] [--threads 2]

Batches come from the scorer's own training generator (:class:`iterpose.train.scorer_task.ScorerTask`, the scenes
and candidates of ``--config``) at steps far beyond any training run (seeds it never saw). Per object the four
candidates are the initial pose, the ground truth with small and with medium noise, and a silhouette-mined wrong
pose; for each pair of candidate kinds: the fraction of pairs (errors differing by more than
:data:`~iterpose.train.scorer_task.RANK_MARGIN` in log) that the predicted errors order as the true ADD(-S) errors
do, plus the accuracy of "predicted below 0.1 d" against "within 0.1 d" and the correlation of predicted and true
log errors. Objects: the LM-O models when ../shared/data/lmo is present (what the shipped weights are for), else
the bundled example object. Writes ``benchmarks/results/scorer_synth[_<tag>].json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import DATA  # noqa: E402

import iterpose  # noqa: E402
from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.mesh import example_object  # noqa: E402
from iterpose.refiners.scorer import ScorerConfig, load_scorer  # noqa: E402
from iterpose.train.config import TrainConfig, config_from_dict, load_config_file  # noqa: E402
from iterpose.train.scorer_task import CANDIDATES, RANK_MARGIN, ScorerTask  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("initial", "small noise", "medium noise", "mined wrong")
FIRST_STEP = 10 ** 7
"""batches are drawn from this step on: beyond any training run, so the scenes are unseen."""


def predictions(task: ScorerTask, scorer, batches: int) -> tuple[np.ndarray, np.ndarray]:
    """``(true errors [n, CANDIDATES], predicted errors [n, CANDIDATES])`` in diameters over ``batches`` batches."""
    true, pred = [], []
    C = CANDIDATES
    for step in range(FIRST_STEP, FIRST_STEP + batches):
        batch = task.make_batch(step, 0)
        N = len(batch.object_ids)
        cands, err = task.candidates(scorer.net, batch, step, 0)
        rep = lambda x: x.repeat_interleave(C, 0)  # noqa: E731
        K = batch.K[batch.image_index].float()
        p = scorer.predict_error(batch.images, rep(K), [i for i in batch.object_ids for _ in range(C)],
                                 cands.reshape(N * C, 4, 4), rep(batch.image_index), rep(batch.T_init.float()))
        true.append(err.numpy())
        pred.append(p.view(N, C).numpy())
    return np.concatenate(true), np.concatenate(pred)


def summarise(true: np.ndarray, pred: np.ndarray, floor: float) -> dict:
    lt = np.log(np.maximum(true, floor))
    lp = np.log(pred)
    pairs = {}
    for a, b in itertools.combinations(range(true.shape[1]), 2):
        sel = np.abs(lt[:, a] - lt[:, b]) > RANK_MARGIN
        right = ((lt[:, a] < lt[:, b]) == (lp[:, a] < lp[:, b]))[sel]
        pairs[f"{KINDS[a]} vs {KINDS[b]}"] = {"pairs": int(sel.sum()),
                                              "ordered": float(right.mean()) if sel.any() else None}
    return {"objects": int(true.shape[0]), "mean_true_error": true.mean(0).tolist(),
            "within_0.1d": (true < 0.1).mean(0).tolist(), "pairs": pairs,
            "threshold_accuracy": float(((pred < 0.1) == (true < 0.1)).mean()),
            "log_correlation": float(np.corrcoef(lp.ravel(), lt.ravel())[0, 1])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "lmo-scorer.pt")
    p.add_argument("--config", type=Path, default=ROOT / "weights" / "lmo-scorer.train.yaml",
                   help="training config whose scenes and noise to draw")
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    apply_threads(args.threads)
    if not args.weights.is_file():
        print(f"{args.weights} not found; nothing to measure", file=sys.stderr)
        return 0
    lmo_models = DATA / "lmo" / "models"
    objects = iterpose.load_objects(lmo_models) if lmo_models.is_dir() else {1: example_object()}
    scorer = load_scorer(args.weights, objects)
    overrides = load_config_file(args.config)
    overrides["method"] = "scorer"
    config = config_from_dict(overrides, ScorerConfig, TrainConfig(method="scorer", model=scorer.config))
    task = ScorerTask(objects, config)
    t0 = time.perf_counter()
    with torch.no_grad():
        true, pred = predictions(task, scorer, args.batches)
    out = {"weights": str(args.weights), "config": str(args.config), "batches": args.batches,
           **summarise(true, pred, scorer.config.error_floor_rel), "wall_s": time.perf_counter() - t0}
    print(f"{out['objects']} objects; within 0.1 d per kind: "
          + ", ".join(f"{k} {v:.2f}" for k, v in zip(KINDS, out["within_0.1d"])))
    for name, v in out["pairs"].items():
        if v["ordered"] is not None:
            print(f"  {name}: {v['ordered']:.3f} of {v['pairs']} pairs ordered right")
    print(f"threshold accuracy {out['threshold_accuracy']:.3f}, log correlation {out['log_correlation']:.3f}")
    path = ROOT / "benchmarks" / "results" / f"scorer_synth{'_' + args.tag if args.tag else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if math.isfinite(out["log_correlation"]) else 1


if __name__ == "__main__":
    sys.exit(main())
