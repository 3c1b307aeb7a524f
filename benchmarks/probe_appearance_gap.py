"""Is it the objects' appearance or their surroundings? The real LM-O dev images changed in two ways, refined
from the same perturbed ground-truth starts as the untouched images.

Usage::

    PYTHONPATH=src python benchmarks/probe_appearance_gap.py --method deepim --weights deepim=weights/lmo-deepim.pt \
        [--levels 2.5 15] [--every 4] [--ring PX ...] [--threads 2] [--tag T]

- "repainted": every annotated object rendered over the photo at its ground-truth pose by the training renderer
  (vertex colours, Lambert light from the camera); background, clutter and the rest of the lighting stay real.
- "backdrop": the annotated objects' real pixels kept inside their rendered ground-truth masks, a training
  background (``clutter``) everywhere else. ``--ring PX`` adds variants that keep PX pixels of the real surroundings
  around each object too (which puts a false outline PX pixels out: how much the refiner reads the outline).

The dataset has no depth or masks: in "repainted" an unannotated object in front of a target is painted over (that
target becomes less occluded); in "backdrop" the part of it inside the target's mask stays. A refiner that keeps
near-correct poses on one variant but not on the real images fails on what that variant made synthetic.
Results are also split by the targets' visibility (ADD(-S) pass rate and mean signed depth error per bin of BOP's
``visib_fract``, over every ground-truth instance), and the script prints, per object, the ratio of the real image's
mean colour to the render's inside the rendered mask. Reads ../shared/data/lmo (exits with a message when absent);
writes ``benchmarks/results/appearance_gap[_<tag>].json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_basin_real import ground_truth_table, perturbed_table  # noqa: E402
from bench_refine_lmo import _report, lmo_root, write_result_json  # noqa: E402

import iterpose  # noqa: E402
from iterpose.cli._common import apply_threads  # noqa: E402
from iterpose.data import BopDataset  # noqa: E402
from iterpose.data.backgrounds import clutter_background  # noqa: E402
from iterpose.data.bop import gt_T_co  # noqa: E402
from iterpose.data.synth_config import SynthConfig  # noqa: E402
from iterpose.data.synth_layout import Instance  # noqa: E402
from iterpose.data.synth_meshes import mesh_arrays  # noqa: E402
from iterpose.data.synth_render import render_instances  # noqa: E402
from iterpose.geometry import bop_to_opencv_K  # noqa: E402
from iterpose.metrics.batched import add_m, adi_m  # noqa: E402
from iterpose.refiners import make_refiner  # noqa: E402
from iterpose.refiners.dataset_refine import refine_results  # noqa: E402
from iterpose.refiners.registry import learned_methods  # noqa: E402

#: Light of the repainting: from the camera, mid ambient and diffuse weights of the training renders' ranges.
LIGHT = np.array([0.0, 0.0, -1.0])
AMBIENT, DIFFUSE = 0.5, 0.5


class RepaintedDataset:
    """A BOP dataset (wrapped: ``BopDataset`` is read-only) whose RGB images have every annotated object repainted
    at its ground-truth pose (``mode="repaint"``), or keep the annotated objects' real pixels (inside their rendered
    ground-truth masks) and replace everything else by a training background (``mode="backdrop"``)."""

    def __init__(self, dataset: BopDataset, meshes: dict, mode: str = "repaint", ring_px: int = 0):
        self._dataset = dataset
        self._meshes = meshes
        self._mode = mode
        self._ring_px = ring_px
        self.color_ratios: dict[int, list] = {}

    def __getattr__(self, name):
        return getattr(self._dataset, name)

    def render_gt(self, scene_id: int, im_id: int):
        """The training renderer's image of the annotated objects of one image (:class:`Rendered`)."""
        insts = self.scene_gt(scene_id)[im_id]
        K = bop_to_opencv_K(self.camera_K(scene_id, im_id))  # as refine_results refines BOP images
        w, h = self.image_size
        config = SynthConfig(height=h, width=w, K=tuple(float(v) for v in K.ravel()))
        placed = [Instance(self._meshes[g.obj_id], gt_T_co(g), i) for i, g in enumerate(insts)]
        return render_instances(placed, len(placed), config, LIGHT, AMBIENT, DIFFUSE), insts

    def load_rgb(self, scene_id: int, im_id: int) -> np.ndarray:
        rgb = self._dataset.load_rgb(scene_id, im_id)
        ren, insts = self.render_gt(scene_id, im_id)
        out = rgb.astype(np.float32) / 255.0
        for i, g in enumerate(insts):
            mine = ren.instance == i
            if mine.sum() > 50:
                self.color_ratios.setdefault(g.obj_id, []).append(out[mine].mean(0) / np.maximum(
                    ren.color[mine].mean(0), 1e-3))
        covered = ren.instance >= 0
        if self._mode == "repaint":
            out[covered] = ren.color[covered]
        else:
            h, w = out.shape[:2]
            backdrop = clutter_background(h, w, np.random.default_rng(scene_id * 100_000 + im_id))
            if self._ring_px > 0:  # keep a ring of real surroundings around each object
                size = 2 * self._ring_px + 1
                covered = cv2.dilate(covered.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)
            out[~covered] = backdrop[~covered]
        return np.round(out * 255.0).clip(0, 255).astype(np.uint8)


VISIBILITY_BINS = ((0.0, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.01))


def by_visibility(ds: BopDataset, gt, table, objects: dict, points: int = 1000) -> list[dict]:
    """Per ground-truth visibility bin (BOP ``visib_fract``): the share of ``table``'s rows (one per ground-truth
    instance of ``gt``, same order) within 0.1 diameter ADD(-S) (ADD-S for symmetric objects; ``points`` model
    vertices), and the mean signed depth error (mm, + = too far)."""
    scene = ds.scene_ids[0]
    gt_info, gt_inst = ds.scene_gt_info(scene), ds.scene_gt(scene)
    visib = np.array([gt_info[m][[g.obj_id for g in gt_inst[m]].index(o)].visib_fract
                      for m, o in zip(gt.im_id, gt.obj_id)])
    T_est, T_gt = torch.from_numpy(table.T_co()), torch.from_numpy(gt.T_co())
    rel = np.zeros(len(visib))
    for o in np.unique(gt.obj_id):
        rows = np.flatnonzero(gt.obj_id == o)
        model = objects[int(o)]
        verts = model.vertices.double()
        pts = verts[torch.linspace(0, len(verts) - 1, min(points, len(verts))).long()]
        metric = adi_m if model.is_symmetric else add_m
        rel[rows] = metric(T_est[rows], T_gt[rows], pts).numpy() / model.diameter_m
    dz_mm = (T_est[:, 2, 3] - T_gt[:, 2, 3]).numpy() * 1000.0
    out = []
    for lo, hi in VISIBILITY_BINS:
        k = (visib >= lo) & (visib < hi)
        out.append({"visib_fract": [lo, min(hi, 1.0)], "n": int(k.sum()), "ad_0.1d": float((rel[k] < 0.1).mean()),
                    "mean_depth_error_mm": float(dz_mm[k].mean())})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", default="deepim")
    p.add_argument("--weights", nargs="*", default=["deepim=weights/lmo-deepim.pt"])
    p.add_argument("--levels", nargs="+", type=float, default=[2.5, 15.0])
    p.add_argument("--every", type=int, default=4, help="keep every k-th image")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--ring", type=int, nargs="*", default=[],
                   help="also 'backdrop' variants that keep this many pixels of real surroundings around the objects")
    args = p.parse_args()
    apply_threads(args.threads)
    lmo = lmo_root()
    if lmo is None:
        return 0
    objects = iterpose.load_objects(lmo / "models")
    weights = dict(w.split("=", 1) for w in args.weights)
    files = [Path(weights[s]) for s in learned_methods(args.method) if s in weights]
    refiner = make_refiner(args.method, objects, weights=files or None)
    meshes = {i: mesh_arrays(m) for i, m in objects.items()}
    datasets = {"real": BopDataset(lmo), "repainted": RepaintedDataset(BopDataset(lmo), meshes),
                "backdrop": RepaintedDataset(BopDataset(lmo), meshes, mode="backdrop")}
    for px in args.ring:
        datasets[f"backdrop+{px}px"] = RepaintedDataset(BopDataset(lmo), meshes, mode="backdrop", ring_px=px)
    real = datasets["real"]
    im_ids = set(real.image_ids(real.scene_ids[0])[::args.every])
    gt = ground_truth_table(real, im_ids)
    results = {"method": args.method, "weights": weights, "every": args.every, "seed": args.seed,
               "torch_threads": torch.get_num_threads(), "levels": {}}
    for li, level in enumerate(args.levels):
        init = perturbed_table(gt, level, args.seed + li)
        before = _report(real, init, im_ids)
        entry = {"n_targets": before["n_targets"], "before": before["recall"]["ad_0.1d"]}
        for name, ds in datasets.items():
            t0 = time.perf_counter()
            refined = refine_results(ds, init, refiner, progress=False).table
            after = _report(real, refined, im_ids)
            entry[name] = {"ad_0.1d": after["recall"]["ad_0.1d"], "proj_5px": after["recall"]["proj_5px"],
                           "per_object_ad_0.1d": {o: v["ad_0.1d"] for o, v in after["per_object"].items()},
                           "by_visibility": by_visibility(real, gt, refined, objects),
                           "wall_s": time.perf_counter() - t0}
            print(f"{args.method} on {name:>13} images, noise {level:>4}°: ADD(-S)@0.1d {entry['before']:.3f} -> "
                  f"{after['recall']['ad_0.1d']:.3f}; by visibility " + ", ".join(
                      f"{b['visib_fract'][0]}-{b['visib_fract'][1]}: {b['ad_0.1d']:.2f} ({b['mean_depth_error_mm']:+.0f} mm)"
                      for b in entry[name]["by_visibility"]), flush=True)
        results["levels"][str(level)] = entry
    ratios = datasets["repainted"].color_ratios
    results["real_over_render_rgb"] = {o: np.median(np.stack(r), 0).round(3).tolist() for o, r in sorted(ratios.items())}
    for o, r in results["real_over_render_rgb"].items():
        print(f"object {o}: real / rendered mean colour (R, G, B) = {r}")
    write_result_json("appearance_gap", args.tag, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
