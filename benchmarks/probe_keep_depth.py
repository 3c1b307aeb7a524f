"""Is DeepIM's depth worth keeping on real images? DeepIM's rotation and image-plane shift with the initial pose's
depth (the translation scaled so the object's centre stays on the new pixel ray at the initial depth), alone and
followed by RGB-LM guarded against the input, as ``deepim+rgb-lm`` runs.

Usage::

    PYTHONPATH=src python benchmarks/probe_keep_depth.py [--weights weights/lmo-deepim.pt] [--threads 2] [--tag T]

Compare with ``bench_refine_lmo.py --method deepim`` / ``deepim+rgb-lm`` (the same weights, DeepIM's own depth).
Reads ../shared/data/lmo and lmo-init (exits with a message when absent); writes
``benchmarks/results/keep_depth[_<tag>].json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import _report, lmo_root, write_result_json  # noqa: E402

import iterpose  # noqa: E402
from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.data import BopDataset, read_results_csv  # noqa: E402
from iterpose.refiners import make_refiner  # noqa: E402
from iterpose.refiners.base import Refiner, RefineBatch, RefineOutput  # noqa: E402
from iterpose.refiners.cascade import CascadeRefiner  # noqa: E402
from iterpose.refiners.dataset_refine import refine_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class KeepInitialDepth(Refiner):
    """Another refiner's result with the initial pose's camera depth: ``t <- t x z_init / z_refined``."""

    def __init__(self, inner: Refiner):
        self.inner = inner
        self.objects = inner.objects
        self.name = f"{getattr(inner, 'name', 'refiner')}, initial depth"

    @property
    def default_iterations(self) -> int:
        return self.inner.default_iterations

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        out = self.inner.refine(batch.images, batch.K, batch.object_ids, batch.init_poses, batch.image_index,
                                iterations=iterations)
        poses = out.poses.clone()
        scale = batch.init_poses[:, 2, 3].to(poses) / poses[:, 2, 3]
        poses[:, :3, 3] = poses[:, :3, 3] * scale[:, None]
        return RefineOutput(poses=poses, scores=out.scores, trace=out.trace, status=out.status, timings=out.timings)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "lmo-deepim.pt")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    apply_threads(args.threads)
    lmo = lmo_root()
    if lmo is None:
        return 0
    objects = iterpose.load_objects(lmo / "models")
    ds = BopDataset(lmo)
    cascade = make_refiner("deepim+rgb-lm", objects, weights=[args.weights])
    deepim = KeepInitialDepth(cascade.stages[0])
    refiners = {"deepim, initial depth": deepim,
                "deepim, initial depth + rgb-lm": CascadeRefiner([deepim, cascade.stages[1]], guard=cascade.guard)}
    results = {"weights": str(args.weights), "inits": {}}
    for init_name in ("kpt", "perturbed"):
        init = read_results_csv(lmo.parent / "lmo-init" / f"{init_name}_lmo-test.csv")
        entry = results["inits"][init_name] = {"before": _report(ds, init, None)["recall"]}
        for name, refiner in refiners.items():
            rep = _report(ds, refine_results(ds, init, refiner, progress=False).table, None)
            entry[name] = {"recall": rep["recall"],
                           "per_object_ad_0.1d": {o: v["ad_0.1d"] for o, v in rep["per_object"].items()}}
            print(f"{init_name:>9} {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in rep["recall"].items()),
                  flush=True)
    write_result_json("keep_depth", args.tag, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
