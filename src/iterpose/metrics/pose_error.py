"""Pose-error functions of the BOP benchmark, matching ``bop_toolkit_lib/pose_error.py`` operation by operation.

Everything here is NumPy float64 in BOP units: millimetres for points and translations, pixels for image
distances, degrees for rotation errors. Poses are ``(R, t)`` with ``R [3, 3]`` model-to-camera rotation and
``t [3]`` (or ``[3, 1]``) translation in mm, mapping a model point ``x -> R x + t``. ``K [3, 3]`` is the OpenCV
intrinsics matrix in pixels. ``pts [P, 3]`` are the model points (BOP evaluates with the vertices of
``models_eval/obj_XXXXXX.ply``), model frame, mm. Symmetries are ``syms = (R_sym [M, 3, 3], t_sym [M, 3])`` in the
model frame (identity first), e.g. from :func:`iterpose.geometry.symmetry.bop_symmetry_transforms_np`.

Two families:

* one function per metric for one estimate and one ground truth, named and ordered like bop_toolkit
  (``add(R_e, t_e, R_g, t_g, pts)``, ``mspd(R_e, t_e, R_g, t_g, K, pts, syms)`` ...);
* ``*_many`` variants that take ``N`` (estimate, ground-truth) pairs at once (``R_e [N, 3, 3]``, ``t_e [N, 3]``,
  ``R_g [N, 3, 3]``, ``t_g [N, 3]``) and return ``[N]`` float64 errors. They perform the same floating-point
  operations in the same order, so their results are bit-identical to the per-pair functions (tested).

References:
    Hinterstoisser et al., "Model based training, detection and pose estimation of texture-less 3D objects in
    heavily cluttered scenes", ACCV 2012 (ADD, ADI). Brachmann et al., "Uncertainty-driven 6D pose estimation of
    objects and scenes from a single RGB image", CVPR 2016 (Proj2D). Hodan et al., "On evaluation of 6D object pose
    estimation", ECCVW 2016 (VSD, re, te). Hodan, Michel et al., "BOP: Benchmark for 6D object pose estimation",
    ECCV 2018 and the BOP Challenge 2019 (MSSD, MSPD, VSD settings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from iterpose.errors import InvalidInputError, ShapeError

__all__ = [
    "transform_pts_Rt",
    "project_pts",
    "add",
    "adi",
    "proj",
    "re",
    "te",
    "mssd",
    "mspd",
    "vsd",
    "vsd_from_depths",
    "depth_im_to_dist_im",
    "overlapping_sphere_projections",
    "add_many",
    "adi_many",
    "proj_many",
    "re_many",
    "te_many",
    "mssd_many",
    "mspd_many",
    "add_mssd_many",
    "proj_mspd_many",
    "BOP19_VSD_TAUS",
    "BOP19_THRESHOLDS_MSSD",
    "BOP19_THRESHOLDS_MSPD",
]

#: BOP19 VSD misalignment tolerances tau (fractions of the diameter): ``np.arange(0.05, 0.51, 0.05)``. Note the
#: third value is 0.15000000000000002, exactly as in bop_toolkit.
BOP19_VSD_TAUS = tuple(float(x) for x in np.arange(0.05, 0.51, 0.05))
#: BOP19 MSSD correctness thresholds (fractions of the diameter), same floats as bop_toolkit.
BOP19_THRESHOLDS_MSSD = BOP19_VSD_TAUS
#: BOP19 MSPD correctness thresholds in pixels (for a 640 px wide image): 5, 10, ..., 50.
BOP19_THRESHOLDS_MSPD = tuple(float(x) for x in np.arange(5, 51, 5))

Syms = tuple[np.ndarray, np.ndarray]


# ----------------------------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------------------------
def _rot(R: np.ndarray, fn: str, name: str) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3):
        raise ShapeError(f"{fn}: {name} must be a [3, 3] rotation matrix, got shape {list(R.shape)}")
    return R


def _trans(t: np.ndarray, fn: str, name: str) -> np.ndarray:
    """``t`` as a ``(3, 1)`` float64 column, the shape bop_toolkit's loaders produce."""
    t = np.asarray(t, dtype=np.float64)
    if t.size != 3:
        raise ShapeError(f"{fn}: {name} must have 3 values (translation in mm), got shape {list(t.shape)}")
    return t.reshape((3, 1))


def _pts(pts: np.ndarray, fn: str) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0:
        raise ShapeError(f"{fn}: pts must be [P, 3] model points in mm with P > 0, got shape {list(pts.shape)}")
    return pts


def _K(K: np.ndarray, fn: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ShapeError(f"{fn}: K must be a [3, 3] intrinsics matrix in pixels, got shape {list(K.shape)}")
    return K


def _syms(syms: Syms, fn: str) -> Syms:
    try:
        R_s, t_s = syms
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{fn}: syms must be a pair (R_sym [M, 3, 3], t_sym [M, 3]) as returned by "
            f"iterpose.geometry.symmetry.bop_symmetry_transforms_np (t in mm)"
        ) from exc
    R_s = np.asarray(R_s, dtype=np.float64)
    t_s = np.asarray(t_s, dtype=np.float64)
    if R_s.ndim != 3 or R_s.shape[1:] != (3, 3) or R_s.shape[0] == 0:
        raise ShapeError(f"{fn}: syms[0] must be [M, 3, 3] with M >= 1 (identity first), got {list(R_s.shape)}")
    t_s = t_s.reshape((R_s.shape[0], 3, 1)) if t_s.size == 3 * R_s.shape[0] else t_s
    if t_s.shape != (R_s.shape[0], 3, 1):
        raise ShapeError(f"{fn}: syms[1] must be [M, 3] translations in mm with M = {R_s.shape[0]}, got {list(t_s.shape)}")
    return R_s, t_s


def _rots(R: np.ndarray, fn: str, name: str) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3):
        raise ShapeError(f"{fn}: {name} must be [N, 3, 3] rotation matrices, got shape {list(R.shape)}")
    return R


def _transs(t: np.ndarray, n: int, fn: str, name: str) -> np.ndarray:
    """``t`` as ``[N, 3, 1]`` float64 columns."""
    t = np.asarray(t, dtype=np.float64)
    if t.size != 3 * n or t.shape[0] != n:
        raise ShapeError(f"{fn}: {name} must be [N, 3] translations in mm with N = {n}, got shape {list(t.shape)}")
    return t.reshape((n, 3, 1))


def _pairs(R_e, t_e, R_g, t_g, fn: str):
    R_e = _rots(R_e, fn, "R_e")
    R_g = _rots(R_g, fn, "R_g")
    n = R_e.shape[0]
    if R_g.shape[0] != n:
        raise ShapeError(f"{fn}: R_e and R_g must have the same N, got {n} and {R_g.shape[0]}")
    return R_e, _transs(t_e, n, fn, "t_e"), R_g, _transs(t_g, n, fn, "t_g")


# ----------------------------------------------------------------------------------------------------------------
# Geometry helpers (bop_toolkit misc.transform_pts_Rt / misc.project_pts)
# ----------------------------------------------------------------------------------------------------------------
def transform_pts_Rt(pts: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rigidly transform points: ``x -> R x + t``.

    Args:
        pts: ``[P, 3]`` float64 points (mm). R: ``[3, 3]``. t: ``[3]`` or ``[3, 1]`` (mm).

    Returns:
        ``[P, 3]`` float64 transformed points (mm), computed as bop's ``(R.dot(pts.T) + t).T``.
    """
    pts = _pts(pts, "transform_pts_Rt")
    return (_rot(R, "transform_pts_Rt", "R").dot(pts.T) + _trans(t, "transform_pts_Rt", "t")).T


def project_pts(pts: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Project model points posed by ``(R, t)`` with intrinsics ``K``.

    Args:
        pts: ``[P, 3]`` float64 model points (mm). K: ``[3, 3]`` pixels. R: ``[3, 3]``. t: ``[3]``/``[3, 1]`` mm.

    Returns:
        ``[P, 2]`` float64 pixel coordinates ``(x, y)`` (OpenCV convention), computed as bop's
        ``P = K [R | t]; (P [pts; 1]) / z``.
    """
    pts = _pts(pts, "project_pts")
    P = _K(K, "project_pts").dot(np.hstack((_rot(R, "project_pts", "R"), _trans(t, "project_pts", "t"))))
    pts_h = np.hstack((pts, np.ones((pts.shape[0], 1))))
    pts_im = P.dot(pts_h.T)
    with np.errstate(divide="ignore", invalid="ignore"):  # points at z = 0 give inf/NaN, as in bop_toolkit
        pts_im /= pts_im[2, :]
    return pts_im[:2, :].T


# ----------------------------------------------------------------------------------------------------------------
# One estimate vs one ground truth (bop_toolkit pose_error.py)
# ----------------------------------------------------------------------------------------------------------------
def add(R_e: np.ndarray, t_e: np.ndarray, R_g: np.ndarray, t_g: np.ndarray, pts: np.ndarray) -> float:
    """ADD: mean distance between corresponding model points in the two poses (Hinterstoisser et al. 2012).

    ``mean_i |(R_e x_i + t_e) - (R_g x_i + t_g)|``. Args as in the module docstring. Returns mm (float).
    """
    pts_e = transform_pts_Rt(pts, R_e, t_e)
    pts_g = transform_pts_Rt(pts, R_g, t_g)
    return float(np.linalg.norm(pts_e - pts_g, axis=1).mean())


def adi(R_e: np.ndarray, t_e: np.ndarray, R_g: np.ndarray, t_g: np.ndarray, pts: np.ndarray) -> float:
    """ADI / ADD-S: mean distance from each GT-posed point to the nearest estimate-posed point (Hinterstoisser 2012).

    Direction as in bop_toolkit: a KD-tree (scipy ``cKDTree``) on the points in the *estimated* pose is queried
    with the points in the *GT* pose. Returns mm (float).
    """
    pts_e = transform_pts_Rt(pts, R_e, t_e)
    pts_g = transform_pts_Rt(pts, R_g, t_g)
    nn_dists, _ = cKDTree(pts_e).query(pts_g, k=1)
    return float(nn_dists.mean())


def proj(
    R_e: np.ndarray, t_e: np.ndarray, R_g: np.ndarray, t_g: np.ndarray, K: np.ndarray, pts: np.ndarray
) -> float:
    """Proj2D: mean image distance between the projections of corresponding model points (Brachmann et al. 2016).

    Returns pixels (float).
    """
    proj_e = project_pts(pts, K, R_e, t_e)
    proj_g = project_pts(pts, K, R_g, t_g)
    return float(np.linalg.norm(proj_e - proj_g, axis=1).mean())


def re(R_e: np.ndarray, R_g: np.ndarray) -> float:
    """Rotation error in **degrees**: ``arccos((tr(R_e R_g^-1) - 1) / 2)``, cosine clipped to [-1, 1].

    Uses the matrix inverse of ``R_g`` (not its transpose) like bop_toolkit: BOP's GT rotations are rounded and
    not exactly orthonormal, so the two differ in the last digits.
    """
    R_e = _rot(R_e, "re", "R_e")
    R_g = _rot(R_g, "re", "R_g")
    error_cos = float(0.5 * (np.trace(R_e.dot(np.linalg.inv(R_g))) - 1.0))
    error_cos = min(1.0, max(-1.0, error_cos))
    return 180.0 * math.acos(error_cos) / np.pi


def te(t_e: np.ndarray, t_g: np.ndarray) -> float:
    """Translation error ``|t_g - t_e|`` in the unit of the inputs (mm for BOP)."""
    return float(np.linalg.norm(_trans(t_g, "te", "t_g") - _trans(t_e, "te", "t_e")))


def mssd(
    R_e: np.ndarray, t_e: np.ndarray, R_g: np.ndarray, t_g: np.ndarray, pts: np.ndarray, syms: Syms
) -> float:
    """MSSD: ``min_S max_i |P_e x_i - P_g S x_i|`` over the symmetry set (BOP Challenge 2019). Returns mm.

    ``P_g S`` has ``R = R_g R_S`` and ``t = R_g t_S + t_g``.
    """
    R_s, t_s = _syms(syms, "mssd")
    R_g = _rot(R_g, "mssd", "R_g")
    t_g = _trans(t_g, "mssd", "t_g")
    pts_e = transform_pts_Rt(pts, R_e, t_e)
    es = []
    for k in range(R_s.shape[0]):
        pts_g_sym = transform_pts_Rt(pts, R_g.dot(R_s[k]), R_g.dot(t_s[k]) + t_g)
        es.append(np.linalg.norm(pts_e - pts_g_sym, axis=1).max())
    return float(min(es))


def mspd(
    R_e: np.ndarray,
    t_e: np.ndarray,
    R_g: np.ndarray,
    t_g: np.ndarray,
    K: np.ndarray,
    pts: np.ndarray,
    syms: Syms,
) -> float:
    """MSPD: ``min_S max_i |pi(P_e x_i) - pi(P_g S x_i)|`` over the symmetry set (BOP Challenge 2019). Pixels."""
    R_s, t_s = _syms(syms, "mspd")
    R_g = _rot(R_g, "mspd", "R_g")
    t_g = _trans(t_g, "mspd", "t_g")
    proj_e = project_pts(pts, K, R_e, t_e)
    es = []
    for k in range(R_s.shape[0]):
        proj_g_sym = project_pts(pts, K, R_g.dot(R_s[k]), R_g.dot(t_s[k]) + t_g)
        es.append(np.linalg.norm(proj_e - proj_g_sym, axis=1).max())
    return float(min(es))


def depth_im_to_dist_im(depth_im: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Depth image (Z along the optical axis) to distance image (along each pixel's ray), bop's ``_fast`` variant.

    Args:
        depth_im: ``[H, W]`` depth (mm), 0 where unknown. K: ``[3, 3]`` pixels (pixel (i, j) at x = j, y = i).

    Returns:
        ``[H, W]`` float64 distances (mm), 0 where the depth is 0.
    """
    K = _K(K, "depth_im_to_dist_im")
    depth_im = np.asarray(depth_im)
    if depth_im.ndim != 2:
        raise ShapeError(f"depth_im_to_dist_im: depth_im must be [H, W], got shape {list(depth_im.shape)}")
    return _dist_im(depth_im, K, 0, 0)


def _dist_im(depth_im: np.ndarray, K: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """:func:`depth_im_to_dist_im` of a window whose top-left pixel is (row y0, col x0) of the full image (the same
    operations on the same full-image pixel coordinates, hence the same bits)."""
    xs, ys = np.meshgrid(np.arange(x0, x0 + depth_im.shape[1]), np.arange(y0, y0 + depth_im.shape[0]))
    pre_xs = (xs - K[0, 2]) / np.float64(K[0, 0])
    pre_ys = (ys - K[1, 2]) / np.float64(K[1, 1])
    return np.sqrt(
        np.multiply(pre_xs, depth_im) ** 2 + np.multiply(pre_ys, depth_im) ** 2 + depth_im.astype(np.float64) ** 2
    )


def overlapping_sphere_projections(radius: float, p1: np.ndarray, p2: np.ndarray) -> bool:
    """Whether the image projections of two spheres of ``radius`` centred at ``p1``, ``p2`` (mm) overlap (approx.).

    bop_toolkit's ``misc.overlapping_sphere_projections``; used to skip VSD for far-apart poses (error 1.0).
    """
    p1 = np.asarray(p1, dtype=np.float64).reshape(3)
    p2 = np.asarray(p2, dtype=np.float64).reshape(3)
    if p1[2] == 0 or p2[2] == 0:
        return False
    proj_dist = np.linalg.norm((p1 / p1[2])[:2] - (p2 / p2[2])[:2])
    return bool(proj_dist < radius * (1.0 / p1[2] + 1.0 / p2[2]))


DepthRenderer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def vsd(
    R_e: np.ndarray,
    t_e: np.ndarray,
    R_g: np.ndarray,
    t_g: np.ndarray,
    depth_test: np.ndarray,
    K: np.ndarray,
    delta: float,
    taus: Sequence[float],
    normalized_by_diameter: bool,
    diameter: float,
    render_depth: DepthRenderer,
    cost_type: str = "step",
) -> list[float]:
    """VSD, Visible Surface Discrepancy (Hodan et al. 2016/2018), with bop_toolkit's "bop19" visibility.

    Args:
        R_e, t_e, R_g, t_g: poses (t in mm).
        depth_test: ``[H, W]`` test depth image in mm (0 = missing).
        K: ``[3, 3]`` intrinsics (OpenCV convention).
        delta: visibility tolerance in mm (BOP: 15; ITODD 5).
        taus: misalignment tolerances (fractions of the diameter if ``normalized_by_diameter``, else mm).
        normalized_by_diameter: divide pixel distances by ``diameter`` (BOP19: True).
        diameter: object diameter in mm.
        render_depth: ``render_depth(R [3,3], t [3] mm) -> [H, W]`` depth in mm (0 = background) rendered *the way
            bop_toolkit's renderer does*, i.e. with pixel centres at ``(j + 0.5, i + 0.5)``. With iterpose's
            OpenCV-convention renderer, render with ``K`` shifted by ``(-0.5, -0.5)`` in ``(cx, cy)``; see
            :func:`iterpose.metrics.vsd_eval.bop_depth_renderer`.
        cost_type: ``"step"`` (BOP, since SIXD 2017) or ``"tlinear"`` (ECCVW 2016).

    Returns:
        One error in [0, 1] per tau (python floats).
    """
    if cost_type not in ("step", "tlinear"):
        raise InvalidInputError(f"vsd: cost_type must be 'step' or 'tlinear', got {cost_type!r}")
    depth_e = np.asarray(render_depth(_rot(R_e, "vsd", "R_e"), _trans(t_e, "vsd", "t_e")))
    depth_g = np.asarray(render_depth(_rot(R_g, "vsd", "R_g"), _trans(t_g, "vsd", "t_g")))
    return vsd_from_depths(depth_e, depth_g, depth_test, K, delta, taus, normalized_by_diameter, diameter, cost_type)


def vsd_from_depths(
    depth_e: np.ndarray,
    depth_g: np.ndarray,
    depth_test: np.ndarray,
    K: np.ndarray,
    delta: float,
    taus: Sequence[float],
    normalized_by_diameter: bool,
    diameter: float,
    cost_type: str = "step",
) -> list[float]:
    """:func:`vsd` from already rendered depth images (bop_toolkit ``pose_error.vsd`` after its two renders).

    Args:
        depth_e, depth_g: ``[H, W]`` depth (mm, 0 = background) of the model in the estimated and the GT pose.
        depth_test, K, delta, taus, normalized_by_diameter, diameter, cost_type: as in :func:`vsd`.

    Returns:
        One error in [0, 1] per tau (python floats).
    """
    if cost_type not in ("step", "tlinear"):
        raise InvalidInputError(f"vsd_from_depths: cost_type must be 'step' or 'tlinear', got {cost_type!r}")
    K = _K(K, "vsd")
    depth_test = np.asarray(depth_test)
    depth_e = np.asarray(depth_e)
    depth_g = np.asarray(depth_g)
    if depth_e.shape != depth_test.shape or depth_g.shape != depth_test.shape:
        raise ShapeError(
            f"vsd: rendered depth {list(depth_e.shape)} / {list(depth_g.shape)} must have the test depth's shape "
            f"{list(depth_test.shape)}"
        )
    # Only pixels where a model is rendered can be visible: work in their bounding box (same result, same bits).
    rendered = np.logical_or(depth_e > 0, depth_g > 0)
    if not rendered.any():
        return [1.0] * len(taus)
    rows = np.nonzero(rendered.any(axis=1))[0]
    cols = np.nonzero(rendered.any(axis=0))[0]
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    x0, y0 = int(cols[0]), int(rows[0])
    dist_test = _dist_im(depth_test[win], K, x0, y0)
    dist_g = _dist_im(depth_g[win], K, x0, y0)
    dist_e = _dist_im(depth_e[win], K, x0, y0)

    def visib(d_test: np.ndarray, d_model: np.ndarray) -> np.ndarray:
        d_diff = d_model.astype(np.float32) - d_test.astype(np.float32)
        return np.logical_and(np.logical_or(d_diff <= delta, d_test == 0), d_model > 0)

    visib_g = visib(dist_test, dist_g)
    visib_e = np.logical_or(visib(dist_test, dist_e), np.logical_and(visib_g, dist_e > 0))
    visib_inter = np.logical_and(visib_g, visib_e)
    visib_union = np.logical_or(visib_g, visib_e)
    union_count = visib_union.sum()
    comp_count = union_count - visib_inter.sum()
    dists = np.abs(dist_g[visib_inter] - dist_e[visib_inter])
    if normalized_by_diameter:
        dists /= diameter
    if union_count == 0:
        return [1.0] * len(taus)
    errors = []
    for tau in taus:
        if cost_type == "step":
            costs = dists >= tau
        else:
            costs = dists / tau
            costs[costs > 1.0] = 1.0
        errors.append(float((np.sum(costs) + comp_count) / float(union_count)))
    return errors


# ----------------------------------------------------------------------------------------------------------------
# N pairs at once (same operations, same order => same bits)
# ----------------------------------------------------------------------------------------------------------------
_CHUNK_VALUES = 4_000_000  # points x pairs processed per chunk (bounds memory to ~100 MB of float64 temporaries)


def _chunks(n: int, n_pts: int):
    step = max(1, _CHUNK_VALUES // max(1, n_pts))
    for s in range(0, n, step):
        yield slice(s, min(n, s + step))


def _transform_many(pts_T: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``[N, 3, P]`` = ``R [N,3,3] @ pts.T [3,P] + t [N,3,1]`` (columns of points, like bop before its ``.T``)."""
    return np.matmul(R, pts_T) + t


def _project_many(pts_h_T: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``[N, 2, P]`` pixel coordinates, as bop's ``project_pts`` per pair."""
    P = np.matmul(K, np.concatenate((R, t), axis=2))
    pts_im = np.matmul(P, pts_h_T)
    with np.errstate(divide="ignore", invalid="ignore"):  # points at z = 0 give inf/NaN, as in bop_toolkit
        pts_im /= pts_im[:, 2:3, :]
    return pts_im[:, :2, :]


def _norm_rows(d: np.ndarray) -> np.ndarray:
    """``[N, C, P] -> [N, P]`` Euclidean norms over C, summing squares in index order like ``np.linalg.norm``."""
    sq = d * d
    acc = sq[:, 0, :]
    for c in range(1, d.shape[1]):
        acc = acc + sq[:, c, :]
    return np.sqrt(acc)


def add_many(R_e, t_e, R_g, t_g, pts) -> np.ndarray:
    """:func:`add` for ``N`` pairs: ``R_* [N, 3, 3]``, ``t_* [N, 3]`` (mm), ``pts [P, 3]``. Returns ``[N]`` mm."""
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "add_many")
    pts_T = np.ascontiguousarray(_pts(pts, "add_many").T)
    out = np.empty(R_e.shape[0])
    for s in _chunks(R_e.shape[0], pts_T.shape[1]):
        d = _transform_many(pts_T, R_e[s], t_e[s]) - _transform_many(pts_T, R_g[s], t_g[s])
        out[s] = _norm_rows(d).mean(axis=1)
    return out


def adi_many(R_e, t_e, R_g, t_g, pts) -> np.ndarray:
    """:func:`adi` for ``N`` pairs (one KD-tree per pair on the estimate-posed points, as bop). Returns ``[N]`` mm."""
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "adi_many")
    pts_T = np.ascontiguousarray(_pts(pts, "adi_many").T)
    out = np.empty(R_e.shape[0])
    for i in range(R_e.shape[0]):
        pts_e = (R_e[i].dot(pts_T) + t_e[i]).T
        pts_g = (R_g[i].dot(pts_T) + t_g[i]).T
        out[i] = cKDTree(pts_e).query(pts_g, k=1)[0].mean()
    return out


def proj_many(R_e, t_e, R_g, t_g, K, pts) -> np.ndarray:
    """:func:`proj` for ``N`` pairs; ``K [3, 3]`` shared or ``[N, 3, 3]`` per pair. Returns ``[N]`` pixels."""
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "proj_many")
    K = _Ks(K, R_e.shape[0], "proj_many")
    pts = _pts(pts, "proj_many")
    pts_h_T = np.ascontiguousarray(np.hstack((pts, np.ones((pts.shape[0], 1)))).T)
    out = np.empty(R_e.shape[0])
    for s in _chunks(R_e.shape[0], pts.shape[0]):
        d = _project_many(pts_h_T, K[s], R_e[s], t_e[s]) - _project_many(pts_h_T, K[s], R_g[s], t_g[s])
        out[s] = _norm_rows(d).mean(axis=1)
    return out


def _Ks(K, n: int, fn: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (3, 3):
        return np.broadcast_to(K, (n, 3, 3))
    if K.shape != (n, 3, 3):
        raise ShapeError(f"{fn}: K must be [3, 3] or [N, 3, 3] with N = {n}, got shape {list(K.shape)}")
    return K


def re_many(R_e, R_g) -> np.ndarray:
    """:func:`re` for ``N`` pairs ``R_* [N, 3, 3]``. Returns ``[N]`` degrees (bit-identical to :func:`re`)."""
    R_e = _rots(R_e, "re_many", "R_e")
    R_g = _rots(R_g, "re_many", "R_g")
    if R_e.shape[0] != R_g.shape[0]:
        raise ShapeError(f"re_many: R_e and R_g must have the same N, got {R_e.shape[0]} and {R_g.shape[0]}")
    tr = np.trace(np.matmul(R_e, np.linalg.inv(R_g)), axis1=1, axis2=2)
    cos = np.clip(0.5 * (tr - 1.0), -1.0, 1.0)
    # math.acos per value: np.arccos may use a SIMD implementation that differs from libm in the last bit.
    return np.array([180.0 * math.acos(c) / np.pi for c in cos.tolist()], dtype=np.float64)


def te_many(t_e, t_g) -> np.ndarray:
    """:func:`te` for ``N`` pairs ``t_* [N, 3]`` (mm). Returns ``[N]`` mm (bit-identical to :func:`te`)."""
    t_e = np.asarray(t_e, dtype=np.float64)
    t_g = np.asarray(t_g, dtype=np.float64)
    if t_e.ndim < 1 or t_e.size != 3 * t_e.shape[0] or t_g.shape[:1] != t_e.shape[:1] or t_g.size != t_e.size:
        raise ShapeError(f"te_many: t_e and t_g must both be [N, 3], got {list(t_e.shape)} and {list(t_g.shape)}")
    d = (t_g.reshape(-1, 3) - t_e.reshape(-1, 3))
    # np.linalg.norm of a flat vector is sqrt(dot(x, x)); keep that exact route.
    return np.array([math.sqrt(float(v.dot(v))) for v in d], dtype=np.float64)


def _sym_poses(R_g: np.ndarray, t_g: np.ndarray, R_s: np.ndarray, t_s: np.ndarray):
    """GT poses composed with symmetry k: ``R_g R_S`` and ``R_g t_S + t_g`` for every pair (``[N,3,3]``, ``[N,3,1]``)."""
    return np.matmul(R_g, R_s), np.matmul(R_g, t_s) + t_g


def _py_min(best: np.ndarray | None, e: np.ndarray) -> np.ndarray:
    """Running minimum with Python ``min`` semantics (a NaN first value stays, a later NaN is skipped)."""
    return e if best is None else np.where(e < best, e, best)


def mssd_many(R_e, t_e, R_g, t_g, pts, syms: Syms) -> np.ndarray:
    """:func:`mssd` for ``N`` pairs. Returns ``[N]`` mm."""
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "mssd_many")
    R_s, t_s = _syms(syms, "mssd_many")
    pts_T = np.ascontiguousarray(_pts(pts, "mssd_many").T)
    out = np.empty(R_e.shape[0])
    for s in _chunks(R_e.shape[0], pts_T.shape[1]):
        pts_e = _transform_many(pts_T, R_e[s], t_e[s])
        best = None
        for k in range(R_s.shape[0]):
            R_gs, t_gs = _sym_poses(R_g[s], t_g[s], R_s[k], t_s[k])
            e = _norm_rows(pts_e - _transform_many(pts_T, R_gs, t_gs)).max(axis=1)
            best = _py_min(best, e)
        out[s] = best
    return out


def mspd_many(R_e, t_e, R_g, t_g, K, pts, syms: Syms) -> np.ndarray:
    """:func:`mspd` for ``N`` pairs; ``K [3, 3]`` or ``[N, 3, 3]``. Returns ``[N]`` pixels."""
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "mspd_many")
    R_s, t_s = _syms(syms, "mspd_many")
    K = _Ks(K, R_e.shape[0], "mspd_many")
    pts = _pts(pts, "mspd_many")
    pts_h_T = np.ascontiguousarray(np.hstack((pts, np.ones((pts.shape[0], 1)))).T)
    out = np.empty(R_e.shape[0])
    for s in _chunks(R_e.shape[0], pts.shape[0]):
        proj_e = _project_many(pts_h_T, K[s], R_e[s], t_e[s])
        best = None
        for k in range(R_s.shape[0]):
            R_gs, t_gs = _sym_poses(R_g[s], t_g[s], R_s[k], t_s[k])
            e = _norm_rows(proj_e - _project_many(pts_h_T, K[s], R_gs, t_gs)).max(axis=1)
            best = _py_min(best, e)
        out[s] = best
    return out


def add_mssd_many(R_e, t_e, R_g, t_g, pts, syms: Syms) -> tuple[np.ndarray, np.ndarray]:
    """:func:`add_many` and :func:`mssd_many` together, sharing the identity-symmetry distances (same bits).

    Returns:
        ``(add [N], mssd [N])`` in mm, bit-identical to the two separate functions.
    """
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "add_mssd_many")
    R_s, t_s = _syms(syms, "add_mssd_many")
    _check_identity_first(R_s, t_s, "add_mssd_many")
    pts_T = np.ascontiguousarray(_pts(pts, "add_mssd_many").T)
    add_out, mssd_out = np.empty(R_e.shape[0]), np.empty(R_e.shape[0])
    for s in _chunks(R_e.shape[0], pts_T.shape[1]):
        pts_e = _transform_many(pts_T, R_e[s], t_e[s])
        best = None
        for k in range(R_s.shape[0]):
            R_gs, t_gs = _sym_poses(R_g[s], t_g[s], R_s[k], t_s[k])
            dist = _norm_rows(pts_e - _transform_many(pts_T, R_gs, t_gs))
            if k == 0:  # identity: R_g I = R_g and R_g 0 + t_g = t_g exactly, so these are ADD's distances
                add_out[s] = dist.mean(axis=1)
            best = _py_min(best, dist.max(axis=1))
        mssd_out[s] = best
    return add_out, mssd_out


def proj_mspd_many(R_e, t_e, R_g, t_g, K, pts, syms: Syms) -> tuple[np.ndarray, np.ndarray]:
    """:func:`proj_many` and :func:`mspd_many` together, sharing the identity-symmetry projections (same bits).

    Returns:
        ``(proj [N], mspd [N])`` in pixels, bit-identical to the two separate functions.
    """
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "proj_mspd_many")
    R_s, t_s = _syms(syms, "proj_mspd_many")
    _check_identity_first(R_s, t_s, "proj_mspd_many")
    K = _Ks(K, R_e.shape[0], "proj_mspd_many")
    pts = _pts(pts, "proj_mspd_many")
    pts_h_T = np.ascontiguousarray(np.hstack((pts, np.ones((pts.shape[0], 1)))).T)
    proj_out, mspd_out = np.empty(R_e.shape[0]), np.empty(R_e.shape[0])
    for s in _chunks(R_e.shape[0], pts.shape[0]):
        proj_e = _project_many(pts_h_T, K[s], R_e[s], t_e[s])
        best = None
        for k in range(R_s.shape[0]):
            R_gs, t_gs = _sym_poses(R_g[s], t_g[s], R_s[k], t_s[k])
            dist = _norm_rows(proj_e - _project_many(pts_h_T, K[s], R_gs, t_gs))
            if k == 0:
                proj_out[s] = dist.mean(axis=1)
            best = _py_min(best, dist.max(axis=1))
        mspd_out[s] = best
    return proj_out, mspd_out


def _check_identity_first(R_s: np.ndarray, t_s: np.ndarray, fn: str) -> None:
    if not (np.array_equal(R_s[0], np.eye(3)) and not np.any(t_s[0])):
        raise InvalidInputError(
            f"{fn}: the first symmetry must be the exact identity (R = I, t = 0), as "
            "iterpose.geometry.symmetry.bop_symmetry_transforms_np returns it"
        )
