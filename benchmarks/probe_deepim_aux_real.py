"""Do DeepIM's dense training-only outputs (flow, observed mask) transfer to real images? The same noise on the
ground truth of the LM-O dev images and of synthetic training batches; per crop cell, the flow's end-point error
and the mask's IoU, real against synthetic; and the pose of one step, regressed (DeepIM's update) or fitted to the
flow (:func:`iterpose.refiners.deepim.flow_pose.fit_pose_to_flow`).

Usage::

    PYTHONPATH=src python benchmarks/probe_deepim_aux_real.py --weights RUN/final.pt [--level 5] [--batches 12]
        [--config weights/lmo-deepim.phase10-aux.yaml] [--threads 2] [--tag T]

The weights must come from a run with ``model.aux_heads: true``. The real images' visible masks are rendered
from the ground truth of the 8 annotated objects (other objects in the scene do not occlude in them). Initial
poses: the ground truth perturbed with ``--level``° per Euler angle and (1, 1, 4) mm per degree in x, y, z (the
synthetic batches use the same noise). One DeepIM iteration from them. A flow that is as good on real crops as on
synthetic ones would say that dense correspondence crosses the domain gap better than the regressed pose does.
Writes ``benchmarks/results/deepim_aux_real[_<tag>].json``. Needs ../shared/data/lmo.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import parse_probe_args, write_result_json  # noqa: E402
from probe_gt_edges import gt_frames  # noqa: E402

import iterpose  # noqa: E402
from iterpose.data.perturb import PerturbConfig, perturb_poses  # noqa: E402
from iterpose.metrics.batched import add_m, adi_m  # noqa: E402
from iterpose.refiners.deepim.flow_pose import fit_pose_to_flow  # noqa: E402
from iterpose.refiners.deepim.config import DeepimConfig  # noqa: E402
from iterpose.train import config as train_config  # noqa: E402
from iterpose.train.deepim_aux import aux_targets  # noqa: E402
from iterpose.train.synth_batches import InitNoise, SynthBatchSource  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def cell_stats(maps: torch.Tensor, targets) -> dict:
    """Per-object lists: mean flow end-point error over the valid cells (crop pixels), the same for a zero flow
    (how far the pixels really move), and mask IoU (logit > 0 against a target fraction > 0.5)."""
    epe, epe0, iou = [], [], []
    for n in range(maps.shape[0]):
        v = targets.flow_valid[n]
        if bool(v.any()):
            tgt = targets.flow[n].permute(1, 2, 0)[v]
            epe.append(float((maps[n, :2].permute(1, 2, 0)[v] - tgt).norm(dim=1).mean()))
            epe0.append(float(tgt.norm(dim=1).mean()))
        pred, tgt = maps[n, 2] > 0, targets.mask[n] > 0.5
        union = int((pred | tgt).sum())
        if union:
            iou.append(int((pred & tgt).sum()) / union)
    return {"epe": epe, "epe0": epe0, "iou": iou}


def pose_stats(objects, ids, T_gt: torch.Tensor, poses: dict) -> dict:
    """Per-object lists for each pose set in ``poses`` (name -> ``[N, 4, 4]``): ADD(-S) under 0.1 d (0/1) and the
    absolute relative depth error."""
    out = {}
    for name, T in poses.items():
        ok, rz = [], []
        for i, oid in enumerate(ids):
            obj = objects[oid]
            err = adi_m if obj.is_symmetric else add_m
            ok.append(float(float(err(T[i:i + 1], T_gt[i:i + 1], obj.vertices)[0]) < 0.1 * obj.diameter_m))
            rz.append(abs(float(T[i, 2, 3] / T_gt[i, 2, 3]) - 1))
        out[f"ad_{name}"], out[f"rz_{name}"] = ok, rz
    return out


def run_model(model, objects, images, K, ids, T_init, T_gt, image_index, mask_visible) -> dict:
    """One DeepIM forward pass from ``T_init``: the dense outputs' errors (:func:`cell_stats`) and the poses of
    its regressed update (``R``) and of the fit to its flow (``F``) (:func:`pose_stats`)."""
    observed = model.observed_boxes(ids, T_init, K)
    with torch.no_grad():
        step = model.iterate(images, K, ids, T_init, image_index, observed, aux=True)
    fitted = fit_pose_to_flow(T_init, step.inputs.X_cam, step.inputs.K_crop, step.inputs.rendered_mask, step.aux)
    return {**cell_stats(step.aux, aux_targets(step.inputs, T_init, T_gt, mask_visible)),
            **pose_stats(objects, ids, T_gt, {"init": T_init, "R": step.T_co, "F": fitted})}


def real_stats(lmo: Path, model, objects, level: float, seed: int, max_images: int | None = None) -> dict:
    gen = torch.Generator().manual_seed(seed)
    noise = PerturbConfig(rot_std_deg=level, trans_std_m=(0.001 * level, 0.001 * level, 0.004 * level))
    out = {}
    for image, K, ids, T_gt, render in gt_frames(lmo, objects, max_images):
        idx = torch.zeros(len(ids), dtype=torch.int64)
        s = run_model(model, objects, image, K[idx], ids, perturb_poses(T_gt, noise, gen), T_gt, idx,
                      render.mask_visible)
        for k, v in s.items():
            out.setdefault(k, []).extend(v)
    return out


def synthetic_stats(model, objects, cfg, level: float, batches: int) -> dict:
    noise = InitNoise(levels=((level, 0.001 * level, 0.001 * level, 0.004 * level),))
    source = SynthBatchSource(list(objects.values()), cfg.synth, noise, cfg.augment, batch_size=8, seed=4242)
    out = {}
    for step in range(batches):
        b = source.batch(step)
        s = run_model(model, objects, b.images, b.K[b.image_index], b.object_ids, b.T_init, b.T_gt, b.image_index,
                      b.mask_visible)
        for k, v in s.items():
            out.setdefault(k, []).extend(v)
    return out


def summary(stats: dict) -> dict:
    return {"n": len(stats["epe"]), "flow_epe_px_median": float(np.median(stats["epe"])),
            "zero_flow_epe_px_median": float(np.median(stats["epe0"])),
            "flow_epe_px_mean": float(np.mean(stats["epe"])), "mask_iou_median": float(np.median(stats["iou"])),
            "mask_iou_mean": float(np.mean(stats["iou"])),
            **{f"ad_0.1d_{k}": float(np.mean(stats[f"ad_{k}"])) for k in ("init", "R", "F")},
            **{f"abs_rel_depth_err_median_{k}": float(np.median(stats[f"rz_{k}"])) for k in ("init", "R", "F")}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--config", type=Path, default=ROOT / "weights" / "lmo-deepim.phase10-aux.yaml",
                   help="the training config whose scenes and augmentation the synthetic batches use")
    p.add_argument("--level", type=float, default=5.0)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--images", type=int, default=None, help="only the first N real images (default: all)")
    args, lmo = parse_probe_args(p)
    if lmo is None:
        return 0
    refiner = iterpose.load_refiner(args.weights)
    model = refiner.net
    if not model.config.aux_heads:
        print(f"{args.weights} has no aux heads (model.aux_heads: false)", file=sys.stderr)
        return 2
    objects = iterpose.load_objects(lmo / "models")
    cfg = train_config.config_from_dict(train_config.load_config_file(args.config), DeepimConfig)
    cfg = dataclasses.replace(cfg, model=model.config)
    out = {"weights": str(args.weights), "level_deg": args.level,
           "real": summary(real_stats(lmo, model, objects, args.level, seed=7, max_images=args.images)),
           "synthetic": summary(synthetic_stats(model, objects, cfg, args.level, args.batches))}
    for k in ("synthetic", "real"):
        r = out[k]
        print(f"{k:>9}: n={r['n']}  flow EPE median {r['flow_epe_px_median']:.2f} px "
              f"(mean {r['flow_epe_px_mean']:.2f}; zero flow {r['zero_flow_epe_px_median']:.2f})"
              f"  mask IoU median {r['mask_iou_median']:.3f} (mean {r['mask_iou_mean']:.3f})")
        steps = ", ".join(f"{k} {r[f'ad_0.1d_{k}']:.3f} / {100 * r[f'abs_rel_depth_err_median_{k}']:.2f} %"
                          for k in ("init", "R", "F"))
        print(" " * 11 + "ADD(-S)@0.1d / median |relative depth error|: " + steps)
    write_result_json("deepim_aux_real", args.tag, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
