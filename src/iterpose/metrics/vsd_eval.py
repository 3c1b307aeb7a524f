"""BOP19 VSD over a dataset: errors of every (estimate, valid GT) pair, and AR_VSD.

Reproduces bop_toolkit ``scripts/eval_calc_errors.py`` (``error_type="vsd"``) + ``eval_calc_scores.py`` +
``eval_bop19_pose.py``:

* the depth images are rendered from the **models_eval** meshes (bop's renderer is filled with
  ``dataset_params.get_model_params(..., model_type="eval")``), at the full image size;
* bop's renderer puts pixel centres at ``(j + 0.5, i + 0.5)``; iterpose's rasteriser uses OpenCV's ``(j, i)``, so
  the model is rendered with ``cx, cy`` shifted by -0.5 (:func:`bop_depth_renderer`), metres -> mm;
* the test depth is ``depth PNG x depth_scale`` (float32 mm);
* shortcut as bop: when the image projections of the two bounding spheres (radius = diameter / 2) do not overlap
  (:func:`iterpose.metrics.pose_error.overlapping_sphere_projections`), every error is 1.0 and nothing is rendered;
* delta = 15 mm (5 mm for ITODD), taus = ``np.arange(0.05, 0.51, 0.05)`` (fractions of the diameter), "step" cost,
  visibility "bop19" (:func:`iterpose.metrics.pose_error.vsd_from_depths`);
* AR_VSD = mean of the recalls over every (tau, theta), theta in ``np.arange(0.05, 0.51, 0.05)``, strict ``<``.

Only pairs with **valid** GTs are evaluated: bop computes the others too but never uses them in matching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from iterpose.data.units import m_from_mm, mm_from_m
from iterpose.errors import MissingFileError, ShapeError
from iterpose.metrics import pose_error as pe

__all__ = ["vsd_errors", "bop_depth_renderer", "vsd_delta_mm", "VSD_DELTA_MM", "VSD_THRESHOLDS"]

#: Visibility tolerance delta (mm) per dataset name; other datasets use 15 mm (bop_toolkit ``vsd_deltas``).
VSD_DELTA_MM = {"itodd": 5.0}
#: BOP19 VSD correctness thresholds theta (same floats as bop_toolkit).
VSD_THRESHOLDS = pe.BOP19_VSD_TAUS

#: ``render(obj_id, R [N,3,3], t_mm [N,3], K [N,3,3], height, width) -> [N, H, W]`` depth in mm (0 = background),
#: rendered with bop's pixel-centre convention.
DepthRenderFn = Callable[[int, np.ndarray, np.ndarray, np.ndarray, int, int], np.ndarray]


def vsd_delta_mm(dataset_name: str) -> float:
    """bop_toolkit's VSD delta for a dataset name (``"itodd"`` -> 5 mm, otherwise 15 mm)."""
    return VSD_DELTA_MM.get(str(dataset_name), 15.0)


def bop_depth_renderer(models_eval_dir, obj_ids: Sequence[int], batch: int = 16) -> DepthRenderFn:
    """A depth renderer matching bop_toolkit's for VSD, built on :func:`iterpose.render.render_depth`.

    Args:
        models_eval_dir: the dataset's ``models_eval`` folder (meshes in mm).
        obj_ids: objects to load (lazily, on first use).
        batch: poses rasterised per call (memory: ``batch x H x W`` float32).

    Returns:
        ``render(obj_id, R [N, 3, 3], t_mm [N, 3], K [N, 3, 3], height, width) -> [N, H, W]`` float64 depth in mm,
        0 on the background, with pixel centres at ``(j + 0.5, i + 0.5)`` of ``K`` (bop's convention).
    """
    import torch  # noqa: PLC0415 (only VSD needs the renderer)

    from iterpose.geometry.camera import bop_to_opencv_K  # noqa: PLC0415
    from iterpose.mesh.io import load_mesh  # noqa: PLC0415
    from iterpose.render import render_depth  # noqa: PLC0415

    models: dict[int, object] = {}
    wanted = set(int(o) for o in obj_ids)

    def model(obj_id: int):
        if obj_id not in models:
            path = Path(models_eval_dir) / f"obj_{obj_id:06d}.ply"
            if obj_id not in wanted or not path.is_file():
                raise MissingFileError(f"vsd: models_eval mesh of object {obj_id} not found: {path}")
            models[obj_id] = load_mesh(path, obj_id=obj_id, unit="mm")
        return models[obj_id]

    def render(obj_id: int, R: np.ndarray, t_mm: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
        R = np.asarray(R, dtype=np.float64).reshape(-1, 3, 3)
        n = R.shape[0]
        T = np.tile(np.eye(4), (n, 1, 1))
        T[:, :3, :3] = R
        T[:, :3, 3] = m_from_mm(np.asarray(t_mm, dtype=np.float64).reshape(n, 3))
        K_bop = bop_to_opencv_K(np.broadcast_to(np.asarray(K, dtype=np.float64), (n, 3, 3)))
        out = np.empty((n, int(height), int(width)))
        m = model(int(obj_id))
        for a in range(0, n, batch):
            b = min(n, a + batch)
            d = render_depth(m, torch.from_numpy(T[a:b]), torch.from_numpy(K_bop[a:b]), int(height), int(width))
            out[a:b] = mm_from_m(d.double().numpy())
        return out

    return render


def vsd_errors(
    load_depth_mm: Callable[[int, int], np.ndarray],
    pair_image: Sequence[tuple[int, int]],
    obj_ids: Sequence[int],
    R_e: np.ndarray,
    t_e: np.ndarray,
    R_g: np.ndarray,
    t_g: np.ndarray,
    K: np.ndarray,
    diameters_mm: Sequence[float],
    render: DepthRenderFn,
    delta_mm: float = 15.0,
    taus: Sequence[float] = pe.BOP19_VSD_TAUS,
    progress: bool = True,
) -> np.ndarray:
    """BOP19 VSD errors of ``N`` (estimate, GT) pairs.

    Args:
        load_depth_mm: ``(scene_id, im_id) -> [H, W]`` test depth in mm (0 = missing), e.g.
            :meth:`iterpose.data.bop.BopDataset.load_depth_mm`.
        pair_image: ``[N]`` ``(scene_id, im_id)`` of each pair.
        obj_ids: ``[N]`` object id of each pair.
        R_e, R_g: ``[N, 3, 3]`` rotations; t_e, t_g: ``[N, 3]`` translations in mm; K: ``[N, 3, 3]`` (OpenCV).
        diameters_mm: ``[N]`` object diameter of each pair (mm).
        render: depth renderer, e.g. :func:`bop_depth_renderer`.
        delta_mm: visibility tolerance (:func:`vsd_delta_mm`).
        taus: misalignment tolerances (fractions of the diameter).
        progress: tqdm progress bar over images on stderr.

    Returns:
        ``[N, len(taus)]`` float64 errors in [0, 1].
    """
    R_e, t_e3, R_g, t_g3 = pe._pairs(R_e, t_e, R_g, t_g, "vsd_errors")
    n = R_e.shape[0]
    t_e, t_g = t_e3.reshape(n, 3), t_g3.reshape(n, 3)
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (n, 3, 3) or len(pair_image) != n or len(obj_ids) != n or len(diameters_mm) != n:
        raise ShapeError(
            f"vsd_errors: K must be [N, 3, 3] and pair_image, obj_ids, diameters_mm must have N = {n} entries, got "
            f"K {list(K.shape)}, {len(pair_image)}, {len(obj_ids)}, {len(diameters_mm)}"
        )
    out = np.ones((n, len(taus)))
    by_image: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(pair_image):
        by_image.setdefault((int(key[0]), int(key[1])), []).append(i)
    bar = tqdm(by_image.items(), desc="VSD", unit="img", disable=not progress, leave=False)
    for (scene_id, im_id), members in bar:
        overlap = [
            i for i in members
            if pe.overlapping_sphere_projections(0.5 * float(diameters_mm[i]), t_e[i], t_g[i])
        ]
        if not overlap:
            continue  # bop: errors 1.0 without rendering (and without reading the depth image)
        depth_test = np.asarray(load_depth_mm(scene_id, im_id))
        h, w = depth_test.shape
        by_obj: dict[int, list[int]] = {}
        for i in overlap:
            by_obj.setdefault(int(obj_ids[i]), []).append(i)
        for obj_id, idx in by_obj.items():
            sel = np.asarray(idx)
            depth_e = render(obj_id, R_e[sel], t_e[sel], K[sel], h, w)
            # GT renders are shared by the estimates of the same GT instance.
            gt_keys: dict[tuple, int] = {}
            gt_rows = []
            for i in idx:
                key = (R_g[i].tobytes(), t_g[i].tobytes(), K[i].tobytes())
                if key not in gt_keys:
                    gt_keys[key] = len(gt_rows)
                    gt_rows.append(i)
            g_sel = np.asarray(gt_rows)
            depth_g = render(obj_id, R_g[g_sel], t_g[g_sel], K[g_sel], h, w)
            for k, i in enumerate(idx):
                g = gt_keys[(R_g[i].tobytes(), t_g[i].tobytes(), K[i].tobytes())]
                out[i] = pe.vsd_from_depths(
                    depth_e[k], depth_g[g], depth_test, K[i], delta_mm, taus, True, float(diameters_mm[i]), "step"
                )
    bar.close()
    return out

