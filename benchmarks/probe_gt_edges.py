"""Where are the image's edges around an object rendered at its ground truth? Real LM-O dev images against
synthetic training scenes (whose ground truth is exact).

Usage::

    PYTHONPATH=src python benchmarks/probe_gt_edges.py [--batches 15] [--threads 2] [--tag T]

For every ground-truth instance at least 95 % visible (of the 8 annotated objects; unannotated objects can still
cover it on the real images), the full model is rendered at the ground truth (BOP pixel shift applied, as
`iterpose refine` does). At each pixel on the rendered silhouette's boundary the image's grey-level gradient is sampled
along the outward normal, from −5 to +5 px in 0.25 px steps, and the offset with the strongest gradient is kept
(contour points with a gradient under 0.02 per pixel are skipped). Per instance and side of the outline (normal
within about 37° of up, down, left or right), the median offset; then the mean, median and standard deviation over
instances, overall and per object.
Positive: the image's edge lies outside the rendered silhouette. The synthetic scenes (phase 7's recipe,
augmented) measure what the method itself reads where the ground truth is exact. Writes
``benchmarks/results/gt_edges[_<tag>].json``. Needs ../shared/data/lmo.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_refine_lmo import parse_probe_args, write_result_json  # noqa: E402

import iterpose  # noqa: E402
from iterpose.data import BopDataset  # noqa: E402
from iterpose.data.bop import gt_T_co  # noqa: E402
from iterpose.geometry.camera import bop_to_opencv_K  # noqa: E402
from iterpose.refiners.deepim.config import DeepimConfig  # noqa: E402
from iterpose.render.scene import render_objects, render_scene  # noqa: E402
from iterpose.train import config as train_config  # noqa: E402
from iterpose.train.synth_batches import InitNoise, SynthBatchSource  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("top", "bottom", "left", "right")
MIN_VISIBLE = 0.95


def grey_gradient(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey-level gradient ``(gx, gy)``, each ``[1, 1, H, W]``, of ``image [1, 3, H, W]`` after a 3x3 box blur."""
    gray = (0.299 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2])[:, None]
    gray = F.avg_pool2d(gray, 3, 1, 1, count_include_pad=False)
    gx = F.pad(gray[..., :, 2:] - gray[..., :, :-2], (1, 1, 0, 0)) / 2
    gy = F.pad(gray[..., 2:, :] - gray[..., :-2, :], (0, 0, 1, 1)) / 2
    return gx, gy


def outline_points(silhouette: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points ``[P, 2]`` (x, y px, on the edge half a pixel outside the boundary pixels) and outward unit normals
    ``[P, 2]`` of ``silhouette [H, W]`` bool."""
    m = silhouette.float()[None, None]
    smooth = F.avg_pool2d(m, 5, 1, 2)  # outward normals from the smoothed silhouette's gradient
    ny_map = -F.pad(smooth[..., 2:, :] - smooth[..., :-2, :], (0, 0, 1, 1))[0, 0]
    nx_map = -F.pad(smooth[..., :, 2:] - smooth[..., :, :-2], (1, 1, 0, 0))[0, 0]
    boundary = (m + F.max_pool2d(-m, 3, 1, 1))[0, 0] > 0.5
    ii, jj = boundary.nonzero(as_tuple=True)
    n = torch.stack([nx_map[ii, jj], ny_map[ii, jj]], dim=1)
    n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return torch.stack([jj.float(), ii.float()], dim=1) + 0.5 * n, n


def edge_offsets(image: torch.Tensor, silhouette: torch.Tensor) -> dict[str, float]:
    """``{side: median outward offset (px)}`` of the strongest grey-level edge along the normals of the boundary of
    ``silhouette [H, W]`` bool in ``image [1, 3, H, W]`` (sides with fewer than 5 usable contour points left out)."""
    H, W = image.shape[2:]
    gx, gy = grey_gradient(image)
    p, n = outline_points(silhouette)
    x0, y0, nx, ny = p[:, 0], p[:, 1], n[:, 0], n[:, 1]
    steps = torch.arange(-5, 5.01, 0.25)
    xs, ys = x0[:, None] + steps * nx[:, None], y0[:, None] + steps * ny[:, None]
    grid = torch.stack([(2 * xs + 1) / W - 1, (2 * ys + 1) / H - 1], dim=-1)[None]
    along = (F.grid_sample(gx, grid, align_corners=False)[0, 0] * nx[:, None]
             + F.grid_sample(gy, grid, align_corners=False)[0, 0] * ny[:, None]).abs()
    best = steps[along.argmax(1)]
    strong = along.max(1).values > 0.02
    out = {}
    for side, sel in zip(SIDES, (ny < -0.8, ny > 0.8, nx < -0.8, nx > 0.8)):
        if int((sel & strong).sum()) >= 5:
            out[side] = float(best[sel & strong].median())
    return out


def gt_frames(lmo: Path, objects, max_images: int | None = None):
    """Yields, per image of the LM-O dataset at ``lmo`` with annotated instances of ``objects``: ``(image [1, 3, H, W] 0..1, K [1, 3, 3]
    OpenCV (BOP pixel shift applied), obj_ids [N], T_gt [N, 4, 4], render)``, ``render`` the instances rendered at
    their ground truth in one z-buffer (:class:`~iterpose.render.scene.SceneRender`: full and visible masks)."""
    ds = BopDataset(lmo)
    frames = [(s, m) for s in ds.scene_ids for m in sorted(ds.scene_gt(s))][:max_images]
    for scene, im_id in frames:
        insts = [g for g in ds.scene_gt(scene)[im_id] if not g.is_placeholder and g.obj_id in objects]
        if not insts:
            continue
        image = torch.from_numpy(np.ascontiguousarray(ds.load_rgb(scene, im_id))).permute(2, 0, 1)[None].float() / 255
        K = torch.tensor(bop_to_opencv_K(np.array(ds.camera_K(scene, im_id), dtype=np.float64)),
                         dtype=torch.float32)[None]
        T = torch.tensor(np.stack([gt_T_co(g) for g in insts]), dtype=torch.float32)
        render = render_scene([objects[g.obj_id] for g in insts], T, K, torch.zeros(len(insts), dtype=torch.int64),
                              image.shape[2], image.shape[3], shading=False)
        yield image, K, [g.obj_id for g in insts], T, render


def real_instances(lmo: Path, objects):
    """Yields ``(image [1, 3, H, W], K [3, 3], obj_id, T_gt [4, 4], silhouette [H, W] bool)`` for every instance of
    the LM-O dataset at ``lmo`` at least ``MIN_VISIBLE`` visible among the annotated objects (and 200 px large), the
    silhouette being the full model rendered at its ground truth."""
    for image, K, ids, T, render in gt_frames(lmo, objects):
        for n, oid in enumerate(ids):
            full = render.mask_full[n]
            if full.sum() >= 200 and render.mask_visible[n].sum() >= MIN_VISIBLE * full.sum():
                yield image, K[0], oid, T[n], full


def synthetic_instances(objects, batches: int):
    """The same as :func:`real_instances` for ``batches`` batches of 8 synthetic scenes of phase 7's training recipe
    (augmented), where the ground truth is exact."""
    cfg = train_config.config_from_dict(
        train_config.load_config_file(ROOT / "weights" / "lmo-deepim.phase7-fine.yaml"), DeepimConfig)
    source = SynthBatchSource(list(objects.values()), cfg.synth, InitNoise(levels=((1.0, 0.0, 0.0, 0.0),)),
                              cfg.augment, batch_size=8, seed=99)
    for step in range(batches):
        b = source.batch(step)
        H, W = b.images.shape[2:]
        for n, oid in enumerate(b.object_ids):
            k = int(b.image_index[n])
            full = render_objects([objects[oid]], b.T_gt[n:n + 1], b.K[k:k + 1], H, W, shading=False).mask[0]
            if full.sum() >= 200 and b.mask_visible[n].sum() >= MIN_VISIBLE * full.sum():
                yield b.images[k:k + 1], b.K[k], oid, b.T_gt[n], full


def real_offsets(lmo: Path, objects) -> tuple[dict[str, list[float]], dict[int, dict[str, list[float]]]]:
    """Per side, the offsets of all instances; and the same per object id."""
    out: dict[str, list[float]] = {s: [] for s in SIDES}
    per_object: dict[int, dict[str, list[float]]] = {}
    for image, _, oid, _, full in real_instances(lmo, objects):
        for side, v in edge_offsets(image, full).items():
            out[side].append(v)
            per_object.setdefault(oid, {}).setdefault(side, []).append(v)
    return out, per_object


def synthetic_offsets(objects, batches: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {s: [] for s in SIDES}
    for image, _, _, _, full in synthetic_instances(objects, batches):
        for side, v in edge_offsets(image, full).items():
            out[side].append(v)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=15, help="synthetic batches of 8 images")
    args, lmo = parse_probe_args(p)
    if lmo is None:
        return 0
    objects = iterpose.load_objects(lmo / "models")

    def summary(offs: dict) -> dict:
        return {s: {"n": len(v), "mean_px": float(np.mean(v)), "median_px": float(np.median(v)),
                    "std_px": float(np.std(v))} for s, v in offs.items()}

    def show(name: str, rows: dict) -> None:
        print(f"{name:>9}: " + "  ".join(f"{s} {r['mean_px']:+.2f} (median {r['median_px']:+.2f}, "
                                         f"sd {r['std_px']:.2f}, n={r['n']})" for s, r in rows.items()), flush=True)

    real, per_object = real_offsets(lmo, objects)
    out = {"synthetic": summary(synthetic_offsets(objects, args.batches)), "real": summary(real),
           "real_per_object": {str(k): summary(v) for k, v in sorted(per_object.items())}}
    show("synthetic", out["synthetic"])
    show("real", out["real"])
    for k, rows in out["real_per_object"].items():
        show(f"obj {k}", rows)
    write_result_json("gt_edges", args.tag, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
