"""DeepIM's steps against poses fitted to its flow head, on the LM-O dev images.

Usage::

    PYTHONPATH=src python benchmarks/probe_flow_pose.py --weights RUN/final.pt [--schedules RR RRF RFF FFF]
        [--init kpt perturbed] [--threads 2] [--tag T]

A schedule is a string of steps from the initial pose: ``R`` is a DeepIM iteration (the regressed update), ``F``
a DeepIM forward pass whose pose comes from fitting the flow head's 2D-3D correspondences instead
(:func:`iterpose.refiners.deepim.flow_pose.fit_pose_to_flow`). No divergence checks (the raw model; ``RR`` is the
baseline). ADD(-S)@0.1d and Proj@5px with ``iterpose eval``'s evaluator; writes
``benchmarks/results/flow_pose[_<tag>].json``. The weights must come from a run with ``model.aux_heads: true``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import _report, parse_probe_args, write_result_json  # noqa: E402
from probe_ensemble_judge import image_batches  # noqa: E402

import iterpose  # noqa: E402
from iterpose.data import BopDataset, ResultsTable, read_results_csv  # noqa: E402
from iterpose.data.units import T_co_to_Rt_mm  # noqa: E402
from iterpose.refiners.deepim.flow_pose import fit_pose_to_flow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_schedule(model, batch, schedule: str) -> torch.Tensor:
    """``[M, 4, 4]`` poses after the schedule's steps (see the module docstring)."""
    ids = batch.object_ids.tolist()
    K = batch.K[batch.image_index]
    T = batch.init_poses.float()
    observed = model.observed_boxes(ids, T, K)
    with torch.no_grad():
        for c in schedule:
            step = model.iterate(batch.images, K, ids, T, batch.image_index, observed, aux=c == "F")
            T = step.T_co if c == "R" else fit_pose_to_flow(T, step.inputs.X_cam, step.inputs.K_crop,
                                                            step.inputs.rendered_mask, step.aux)
    return T


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--schedules", nargs="+", default=["RR", "RRF", "RFF", "FFF"])
    p.add_argument("--init", nargs="+", default=["kpt", "perturbed"])
    args, lmo = parse_probe_args(p, default_threads=2)
    if lmo is None:
        return 0
    ds = BopDataset(lmo)
    objects = iterpose.load_objects(lmo / "models")
    model = iterpose.load_refiner(args.weights, objects).net
    if not model.config.aux_heads:
        print(f"{args.weights} has no flow head (model.aux_heads: false)", file=sys.stderr)
        return 2
    out = {"weights": str(args.weights), "results": {}}
    for init_name in args.init:
        init = read_results_csv(lmo.parent / "lmo-init" / f"{init_name}_lmo-test.csv")
        T_out = {s: init.T_co().copy() for s in args.schedules}
        for rows, batch in image_batches(ds, init):
            for s in args.schedules:
                T_out[s][rows] = run_schedule(model, batch, s).double().numpy()
        for s in args.schedules:
            R, t = T_co_to_Rt_mm(T_out[s])
            table = ResultsTable(init.scene_id, init.im_id, init.obj_id, init.score, R, t, init.time_s)
            r = _report(ds, table, None)["recall"]
            out["results"][f"{init_name}/{s}"] = r
            print(f"{init_name:>9} {s:>5}: ad_0.1d {r['ad_0.1d']:.4f}  proj_5px {r['proj_5px']:.4f}  "
                  f"ar_mssd {r['ar_mssd']:.4f}  ar_mspd {r['ar_mspd']:.4f}", flush=True)
    write_result_json("flow_pose", args.tag, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
