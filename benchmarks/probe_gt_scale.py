"""Which depth do the image's edges say, against the ground truth? Real LM-O dev images against synthetic training
scenes (whose ground truth is exact).

Usage::

    PYTHONPATH=src python benchmarks/probe_gt_scale.py [--batches 15] [--threads 2] [--tag T]

`probe_gt_edges.py` found the strongest image edges of some objects (ape, cat, holepuncher) 1-3 px outside their
ground-truth outlines on every side: as if those objects were nearer, or larger, than their annotation says. This
probe turns that into a depth. For every ground-truth instance at least 95 % visible (among the annotated objects),
the boundary of the full model rendered at the ground truth (BOP pixel shift applied) is moved as a change of depth
moves it: scaled about the projected object centre by ``1 / s`` (depth × ``s``; exact for a flat object, a small
approximation for these 5-20 cm objects at 0.6-1.3 m) and shifted by ``(dx, dy)`` px. The ``(s, dx, dy)`` on a grid
(``s`` 0.92-1.08 in steps of 0.005, shifts ±3 px in 0.5 px steps) whose outline has the strongest mean grey-level
gradient along its normals is the depth the image's edges agree with best. Reported per object: the median and
spread of ``s`` and the fraction of instances whose best depth is more than 0.1 d / Z away from the ground truth (a
pose that explained the edges best would fail ADD@0.1d by its depth alone), with the same on synthetic scenes as the
probe's own noise floor. Writes ``benchmarks/results/gt_scale[_<tag>].json``; ``--overlay FILE`` also draws the
first instances of ``--overlay-objects`` with the ground-truth outline (green) and the best-depth outline (red), 4×
enlarged (crops of the LM-O images: keep that file out of the repository). Needs ../shared/data/lmo.
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
from probe_gt_edges import grey_gradient, outline_points, real_instances, synthetic_instances  # noqa: E402

import iterpose  # noqa: E402

SCALES = torch.arange(0.92, 1.0801, 0.005)
SHIFTS = torch.arange(-3.0, 3.01, 0.5)


def best_depth_scale(image: torch.Tensor, silhouette: torch.Tensor, centre: torch.Tensor) -> tuple[float, float]:
    """``(s, contrast)``: the depth factor ``s`` (image-consistent depth / ground-truth depth) whose outline, with
    the best image-plane shift, has the strongest mean gradient along its normals, and that mean (0..1 per px).

    Args:
        image: ``[1, 3, H, W]`` 0..1. silhouette: ``[H, W]`` bool, the model at the ground truth.
        centre: ``[2]`` px, the projected object centre (the fixed point of a change of depth).
    """
    H, W = image.shape[2:]
    gx, gy = grey_gradient(image)
    p, n = outline_points(silhouette)
    rel = p - centre
    # every (scale, dx, dy): [S, D, D, P, 2] positions, flattened into one grid_sample call
    pos = (centre + rel[None] / SCALES[:, None, None])[:, None, None]
    pos = pos + torch.stack(torch.meshgrid(SHIFTS, SHIFTS, indexing="xy"), dim=-1)[None, :, :, None, :]
    S, D = len(SCALES), len(SHIFTS)
    grid = torch.stack([(2 * pos[..., 0] + 1) / W - 1, (2 * pos[..., 1] + 1) / H - 1], dim=-1).reshape(1, -1, 1, 2)
    along = (F.grid_sample(gx, grid, align_corners=False)[0, 0, :, 0] * n[:, 0].repeat(S * D * D)
             + F.grid_sample(gy, grid, align_corners=False)[0, 0, :, 0] * n[:, 1].repeat(S * D * D)).abs()
    score = along.reshape(S, D * D, -1).mean(-1)
    k = int(score.argmax())
    return float(SCALES[k // (D * D)]), float(score.max())


def _centre(K: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    uvw = K @ T[:3, 3]
    return uvw[:2] / uvw[2]


def overlay_tile(image: torch.Tensor, silhouette: torch.Tensor, centre: torch.Tensor, s: float, label: str,
                 size: int = 240) -> np.ndarray:
    """``[size, size, 3]`` uint8 BGR: the object's surroundings 4x enlarged, the ground-truth outline in green and
    the outline at depth x ``s`` in red."""
    import cv2

    zoom = 4
    rgb = (image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[:, :, ::-1]
    big = cv2.resize(rgb, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    p, _ = outline_points(silhouette)
    for pts, colour in ((p, (0, 255, 0)), (centre + (p - centre) / s, (0, 0, 255))):
        for x, y in (pts.numpy() * zoom + zoom / 2 - 0.5).astype(int):
            cv2.circle(big, (int(x), int(y)), 1, colour, -1)
    cx, cy = (centre.numpy() * zoom).astype(int)
    r = int(((p - centre).norm(dim=1).max() + 12) * zoom)
    tile = cv2.resize(np.ascontiguousarray(big[max(cy - r, 0):cy + r, max(cx - r, 0):cx + r]), (size, size))
    cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
    return tile


def real_scales(lmo: Path, objects, overlay_objects: tuple[int, ...] = (), per_object_tiles: int = 4
                ) -> tuple[dict[int, list[tuple[float, float, float]]], list[np.ndarray]]:
    """Per object id, ``(s, tolerance, contrast)`` of each instance, tolerance = 0.1 d / Z (a relative depth); and
    :func:`overlay_tile` pictures of the first ``per_object_tiles`` instances of each of ``overlay_objects``."""
    out: dict[int, list[tuple[float, float, float]]] = {}
    tiles: dict[int, list[np.ndarray]] = {oid: [] for oid in overlay_objects}
    for image, K, oid, T, full in real_instances(lmo, objects):
        centre = _centre(K, T)
        s, c = best_depth_scale(image, full, centre)
        out.setdefault(oid, []).append((s, 0.1 * objects[oid].diameter_m / float(T[2, 3]), c))
        if oid in tiles and len(tiles[oid]) < per_object_tiles:
            tiles[oid].append(overlay_tile(image, full, centre, s, f"obj {oid}  s = {s:.3f}"))
    return out, [t for oid in overlay_objects for t in tiles[oid]]


def synthetic_scales(objects, batches: int) -> dict[int, list[tuple[float, float, float]]]:
    """The same on synthetic scenes of phase 7's recipe (augmented), where the ground truth is exact."""
    out: dict[int, list[tuple[float, float, float]]] = {}
    for image, K, oid, T, full in synthetic_instances(objects, batches):
        s, c = best_depth_scale(image, full, _centre(K, T))
        out.setdefault(oid, []).append((s, 0.1 * objects[oid].diameter_m / float(T[2, 3]), c))
    return out


def summary(rows: list[tuple[float, float, float]]) -> dict:
    s, tol = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    return {"n": len(rows), "median_s": float(np.median(s)), "mean_s": float(np.mean(s)),
            "iqr_s": [float(np.percentile(s, 25)), float(np.percentile(s, 75))],
            "frac_nearer_1pct": float(np.mean(s < 0.99)), "frac_farther_1pct": float(np.mean(s > 1.01)),
            "frac_beyond_tolerance": float(np.mean(np.abs(s - 1) > tol)),
            "median_tolerance": float(np.median(tol)), "at_grid_edge": float(np.mean((s <= 0.9201) | (s >= 1.0799)))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=15, help="synthetic batches of 8 images")
    p.add_argument("--overlay", type=Path, default=None, metavar="FILE.png",
                   help="also draw outlines on crops of the real images (keep it out of the repository)")
    p.add_argument("--overlay-objects", default="1,6,12", help="object ids drawn, 4 instances each")
    args, lmo = parse_probe_args(p)
    if lmo is None:
        return 0
    objects = iterpose.load_objects(lmo / "models")
    overlay_ids = tuple(int(x) for x in args.overlay_objects.split(",")) if args.overlay else ()
    real, tiles = real_scales(lmo, objects, overlay_ids)
    if args.overlay and tiles:
        import cv2

        args.overlay.parent.mkdir(parents=True, exist_ok=True)
        rows = [np.hstack(tiles[i:i + 4] + [np.zeros_like(tiles[0])] * (4 - len(tiles[i:i + 4])))
                for i in range(0, len(tiles), 4)]
        cv2.imwrite(str(args.overlay), np.vstack(rows))
        print(f"wrote {args.overlay}")
    results = {}
    for name, per_object in (("synthetic", synthetic_scales(objects, args.batches)), ("real", real)):
        rows = {"all": summary([r for v in per_object.values() for r in v])}
        rows.update({str(k): summary(v) for k, v in sorted(per_object.items())})
        results[name] = rows
        for k, r in rows.items():
            print(f"{name:>9} obj {k:>3}: n={r['n']:3d} depth factor median {r['median_s']:.3f} "
                  f"(IQR {r['iqr_s'][0]:.3f}-{r['iqr_s'][1]:.3f}), nearer >1 % {r['frac_nearer_1pct']:.2f}, "
                  f"farther >1 % {r['frac_farther_1pct']:.2f}, beyond 0.1d/Z {r['frac_beyond_tolerance']:.2f} "
                  f"(median 0.1d/Z {r['median_tolerance']:.3f}), at grid edge {r['at_grid_edge']:.2f}", flush=True)
    write_result_json("gt_scale", args.tag, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
