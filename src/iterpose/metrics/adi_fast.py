"""Fast ADI (ADD-S) for BOP evaluation: one KD-tree per object, and exact threshold decisions.

bop_toolkit computes ADI of one (estimate, GT) pair by building a KD-tree on the model points in the *estimated*
pose and querying it with the points in the *GT* pose (:func:`iterpose.metrics.pose_error.adi`). Almost all of that
time is the query, so this module avoids work rather than trees:

1. **Model-frame queries.** Rigid motions preserve distances, so the nearest estimate-posed point of a GT-posed point
   ``p_i = R_g x_i + t_g`` is the estimate-posed image of the nearest *model* point of
   ``q_i = R_e^-1 (p_i - t_e)``. One tree on the model points (built once per object) serves every pair. The
   distance is then recomputed in bop's camera frame for the index found, ``|R_e x_j + t_e - p_i|``, so for a
   proper rotation ``R_e`` the value equals bop's to rounding (~1e-15 relative).
   Results CSVs may hold rotations that are not quite orthonormal (rounded or perturbed rows; singular values
   ``s_min..s_max``). Then the model-frame nearest neighbour may differ from bop's, but the recomputed value ``v``
   still bounds bop's value ``a``: ``v / kappa <= a <= v`` with ``kappa = s_max / s_min`` (``v`` is the distance
   to a valid candidate; model-frame distances are at most ``s_max`` times, bop's at least ``s_min`` times, the
   model-frame nearest distance). Pairs whose decision or value this bound cannot settle are evaluated by bop's
   exact route (:func:`iterpose.metrics.pose_error.adi_many`).
2. **Lower bound first.** A coarse sample ``X_S`` of the model points (one per voxel of ``coarse_voxel x
   diameter``) gives, for about 1/50 of the work, a rigorous lower bound of ADI (1-Lipschitz distance functions)::

       ADI >= s_min(R_e) * (sum_s w_s d(q_s, X_S) - R_cov - s_max(A) * r_mean),   A = R_e^-1 R_g

   where ``w_s`` is the fraction of model points whose nearest sample is ``s``, ``R_cov`` the largest distance of
   a model point to its nearest sample and ``r_mean`` the mean one. A pair whose lower bound already reaches the
   correctness threshold can never be matched (bop's thresholds are strict ``<``), so its exact value is never
   needed: :func:`adi_for_matching` returns the lower bound for it (and says so in ``exact``).

3. **Per-point bounds, refined where needed.** For a pair still undecided, the exact nearest neighbours of a
   query-side sample (one point per voxel of ``medium_voxel x diameter``) bound every point's distance:
   ``d_i >= d_s - s_max(A) |x_i - x_s|`` (k nearest samples) and ``d_i <= |q_i - x_nn(s)|`` (a candidate). While
   the mean bounds straddle the threshold, the points with the widest bounds get their exact nearest neighbour.
   Pairs certainly below the threshold keep the upper bound, unless their value is needed for matching (an
   estimate facing several valid GT instances), then they are completed exactly. ADD of the same pair (>= ADI)
   is used as a free upper bound.

Why it is fast: bad poses are decided by the coarse bound, good ones by ADD or the candidate bound; only the pairs
near the threshold need many exact queries. The threshold decision of every pair, hence every true positive and
every recall, is exactly bop's (bounds decide only pairs at least 1e-9 relative away from the threshold); values
that can take part in matching are bop's to ~1e-15 relative (tests, and ``benchmarks/bench_eval.py --verify`` on
every pair of both LM-O dev CSVs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.metrics import pose_error as pe

__all__ = ["AdiIndex", "build_adi_index", "adi_model_frame", "adi_lower_bound", "adi_for_matching"]

#: Relative safety margin on every bound comparison (covers float rounding of the bounds themselves).
_SAFETY = 1e-9
#: Relative distance from the threshold below which a pair is never decided by a bound alone.
_DECISION_MARGIN = 1e-9
#: Rotations whose singular values are within this of 1 are treated as proper (model-frame values are exact).
_ORTHO_TOL = 1e-12
#: Refine enough points to close 1.5x the distance to a decision (fewer rounds of nearest-neighbour queries) ...
_REFINE_OVERSHOOT = 1.5
#: ... and at least 1/20 of the unrefined points per round.
_REFINE_MIN_FRACTION_INV = 20
#: KD-tree queries of at least this many points use all cores (``workers=-1``); smaller ones stay on one thread.
_PARALLEL_MIN = 2048
_WORKERS = -1
#: Query-point budget per KD-tree call (bounds memory to ~100 MB of float64 temporaries).
_CHUNK_POINTS = 2_000_000


@dataclass(frozen=True, eq=False)
class AdiIndex:
    """Per-object search structures for :func:`adi_for_matching` (build with :func:`build_adi_index`).

    Attributes:
        pts: ``[P, 3]`` float64 model points (mm, model frame), read-only.
        tree: ``cKDTree`` on ``pts``.
        coarse_tree: ``cKDTree`` on the coarse sample ``pts[coarse_idx]``.
        coarse_idx: ``[S]`` int64 indices of the sample points into ``pts``.
        coarse_weight: ``[S]`` float64 fraction of the model points whose nearest sample is each sample (sums to 1).
        coarse_r_max: largest distance (mm) of a model point to its nearest sample (``R_cov``).
        coarse_r_mean: mean distance (mm) of the model points to their nearest sample.
        medium_idx: ``[M]`` int64 indices of the query-side sample used for per-point bounds.
        medium_assign: ``[P, k]`` int64, for each model point the positions in ``medium_idx`` of its ``k`` nearest
            samples.
        medium_dist: ``[P, k]`` float64 model-frame distances (mm) to those samples.
    """

    pts: np.ndarray
    tree: cKDTree
    coarse_tree: cKDTree
    coarse_idx: np.ndarray
    coarse_weight: np.ndarray
    coarse_r_max: float
    coarse_r_mean: float
    medium_idx: np.ndarray
    medium_assign: np.ndarray
    medium_dist: np.ndarray


def _voxel_sample(pts: np.ndarray, voxel_mm: float, k: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One point per voxel (the first in file order): ``(idx [S], assign, dist)`` where ``assign`` holds each
    point's ``k`` nearest samples (positions in ``idx``; ``[P]`` for k = 1, else ``[P, k]``) and ``dist`` the
    distances to them (mm)."""
    cells = np.floor((pts - pts.min(axis=0)) / voxel_mm).astype(np.int64)
    dims = cells.max(axis=0) + 1
    keys = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    _, first = np.unique(keys, return_index=True)
    idx = np.sort(first).astype(np.int64)
    k = min(k, idx.shape[0])
    dist, assign = cKDTree(pts[idx]).query(pts, k=k)
    return idx, assign.astype(np.int64), dist


def build_adi_index(
    pts: np.ndarray, diameter: float, coarse_voxel: float = 0.1, medium_voxel: float = 0.1, medium_k: int = 4
) -> AdiIndex:
    """Build the search structures of one object.

    Args:
        pts: ``[P, 3]`` model points in mm (``models_eval`` vertices), model frame.
        diameter: object diameter in mm (sets the coarse voxel size).
        coarse_voxel: coarse sample voxel edge as a fraction of the diameter (one point kept per voxel).
        medium_voxel: voxel edge of the query-side sample for per-point bounds, fraction of the diameter (BOP's
            ADI threshold is 0.1 and the same voxel works well).
        medium_k: number of nearest samples whose bounds are combined for each point.

    Returns:
        :class:`AdiIndex`.
    """
    pts = np.ascontiguousarray(pe._pts(pts, "build_adi_index"))
    if not (np.isfinite(diameter) and diameter > 0):
        raise InvalidInputError(f"build_adi_index: diameter must be a positive number of mm, got {diameter!r}")
    if not (0 < coarse_voxel < np.inf):
        raise InvalidInputError(f"build_adi_index: coarse_voxel must be > 0, got {coarse_voxel!r}")
    if not (0 < medium_voxel < np.inf):
        raise InvalidInputError(f"build_adi_index: medium_voxel must be > 0, got {medium_voxel!r}")
    idx, assign, r = _voxel_sample(pts, coarse_voxel * float(diameter))
    coarse_tree = cKDTree(pts[idx])
    weight = np.bincount(assign, minlength=idx.shape[0]).astype(np.float64) / pts.shape[0]
    med_idx, med_assign, med_dist = _voxel_sample(pts, medium_voxel * float(diameter), k=medium_k)
    med_assign = med_assign.reshape(pts.shape[0], -1)
    med_dist = med_dist.reshape(pts.shape[0], -1)
    pts.setflags(write=False)
    return AdiIndex(pts, cKDTree(pts), coarse_tree, idx, weight, float(r.max()), float(r.mean()), med_idx, med_assign,
                    med_dist)


def _pairs(R_e, t_e, R_g, t_g, fn):
    R_e, t_e, R_g, t_g = pe._pairs(R_e, t_e, R_g, t_g, fn)
    return R_e, t_e.reshape(-1, 3), R_g, t_g.reshape(-1, 3)


def _singular_values(R: np.ndarray) -> np.ndarray:
    """``[N, 3]`` singular values (descending) of ``R [N, 3, 3]``."""
    return np.linalg.svd(R, compute_uv=False)


def adi_lower_bound(index: AdiIndex, R_e, t_e, R_g, t_g) -> np.ndarray:
    """Rigorous lower bound of bop's ADI for ``N`` pairs from the coarse sample (see the module docstring).

    Args:
        index: the object's :class:`AdiIndex`. R_e, R_g: ``[N, 3, 3]``. t_e, t_g: ``[N, 3]`` mm.

    Returns:
        ``[N]`` float64 mm, ``<=`` :func:`iterpose.metrics.pose_error.adi` of each pair (>= 0).
    """
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "adi_lower_bound")
    n = R_e.shape[0]
    out = np.zeros(n)
    if n == 0:
        return out
    R_inv = np.linalg.inv(R_e)
    s_e = _singular_values(R_e)
    s_A = _singular_values(np.matmul(R_inv, R_g))[:, 0]
    xs = index.pts[index.coarse_idx]  # [S, 3]
    step = max(1, _CHUNK_POINTS // max(1, xs.shape[0]))
    for a in range(0, n, step):
        b = min(n, a + step)
        # q_s = R_e^-1 (R_g x_s + t_g - t_e), all pairs of the chunk at once.
        p = np.matmul(xs, np.transpose(R_g[a:b], (0, 2, 1))) + (t_g[a:b] - t_e[a:b])[:, None, :]
        q = np.matmul(p, np.transpose(R_inv[a:b], (0, 2, 1)))
        d, _ = index.coarse_tree.query(q.reshape(-1, 3), k=1, workers=-1)
        mean_d = d.reshape(b - a, -1) @ index.coarse_weight
        lb = mean_d - index.coarse_r_max - s_A[a:b] * index.coarse_r_mean
        out[a:b] = np.maximum(lb, 0.0) * s_e[a:b, 2] * (1.0 - _SAFETY)
    return out


def adi_model_frame(index: AdiIndex, R_e, t_e, R_g, t_g) -> np.ndarray:
    """ADI of ``N`` pairs through the object's model-frame tree, distances recomputed in bop's camera frame.

    Equal to :func:`iterpose.metrics.pose_error.adi` to ~1e-15 relative when ``R_e`` is a proper rotation; for a
    non-orthonormal ``R_e`` with singular values ``s_max >= s_min`` the value ``v`` satisfies
    ``v / (s_max / s_min) <= adi <= v``.

    Args:
        index: the object's :class:`AdiIndex`. R_e, R_g: ``[N, 3, 3]``. t_e, t_g: ``[N, 3]`` mm.

    Returns:
        ``[N]`` float64 mm.
    """
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "adi_model_frame")
    n = R_e.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    pts = index.pts
    pts_T = np.ascontiguousarray(pts.T)
    R_inv = np.linalg.inv(R_e)
    step = max(1, _CHUNK_POINTS // pts.shape[0])
    for a in range(0, n, step):
        b = min(n, a + step)
        p_g = np.matmul(R_g[a:b], pts_T) + t_g[a:b, :, None]  # [n, 3, P], bop's transform_pts_Rt (transposed)
        q = np.matmul(R_inv[a:b], p_g - t_e[a:b, :, None])
        _, j = index.tree.query(np.transpose(q, (0, 2, 1)).reshape(-1, 3), k=1, workers=-1)
        j = j.reshape(b - a, -1)
        for k in range(b - a):
            p_e = R_e[a + k].dot(pts_T[:, j[k]]) + t_e[a + k][:, None]
            diff = p_e - p_g[k]
            out[a + k] = np.sqrt(diff[0] * diff[0] + diff[1] * diff[1] + diff[2] * diff[2]).mean()
    return out


def _exact_from_indices(index: AdiIndex, R_e, t_e, p_g_T: np.ndarray, j: np.ndarray) -> float:
    """bop-frame mean distance from GT-posed points ``p_g_T [3, P]`` to estimate-posed model points ``j [P]``."""
    p_e = R_e.dot(index.pts[j].T) + t_e.reshape(3, 1)
    diff = p_e - p_g_T
    return float(np.sqrt(diff[0] * diff[0] + diff[1] * diff[1] + diff[2] * diff[2]).mean())


def adi_for_matching(
    index: AdiIndex,
    R_e,
    t_e,
    R_g,
    t_g,
    threshold_mm: float,
    need_value=None,
    upper_bound=None,
) -> tuple[np.ndarray, np.ndarray]:
    """ADI of ``N`` pairs for BOP matching against the strict threshold ``adi < threshold_mm``.

    Every pair gets a value on the same side of ``threshold_mm`` as bop's exact ADI (the decision is exact). Pairs
    certainly at or above the threshold get a lower bound (they can never be matched, their value is never used);
    pairs certainly below it get an upper bound unless ``need_value``; all others, and every ``need_value`` pair
    below the threshold, get bop's value (to ~1e-15 relative). Work is spent only where the decision needs it:
    coarse bounds (:func:`adi_lower_bound`), then per-point bounds from exact nearest neighbours of a query-side
    sample (:func:`build_adi_index`), then exact nearest neighbours of the points with the widest bounds, until the
    side of the threshold is certain. Bounds decide only pairs at least 1e-9 (relative) away from the threshold.

    Args:
        index: the object's :class:`AdiIndex`. R_e, R_g: ``[N, 3, 3]``. t_e, t_g: ``[N, 3]`` mm.
        threshold_mm: the correctness threshold in mm (BOP: 0.1 x diameter).
        need_value: ``[N]`` bool, pairs whose exact value matters below the threshold (an estimate that may match
            one of several valid GT instances); default none.
        upper_bound: optional ``[N]`` mm known upper bounds of ADI (e.g. ADD of the same pair, since ADI <= ADD).

    Returns:
        ``(values [N] float64 mm, exact [N] bool)``: ``exact`` is False where ``values`` is a bound.
    """
    R_e, t_e, R_g, t_g = _pairs(R_e, t_e, R_g, t_g, "adi_for_matching")
    n = R_e.shape[0]
    need = np.zeros(n, dtype=bool) if need_value is None else np.asarray(need_value, dtype=bool).reshape(-1)
    if need.shape[0] != n:
        raise ShapeError(f"adi_for_matching: need_value must have N = {n} entries, got {need.shape[0]}")
    th = float(threshold_mm)
    # Bound-based decisions keep a relative margin from the threshold, so that a stored bound stays on its side
    # after the caller's own arithmetic (e.g. dividing by the diameter); pairs inside it are evaluated exactly.
    th_hi, th_lo = th * (1.0 + _DECISION_MARGIN), th * (1.0 - _DECISION_MARGIN)
    values = adi_lower_bound(index, R_e, t_e, R_g, t_g)
    exact = np.zeros(n, dtype=bool)
    undecided = values < th_hi
    if upper_bound is not None:
        ub = np.asarray(upper_bound, dtype=np.float64).reshape(-1)
        if ub.shape[0] != n:
            raise ShapeError(f"adi_for_matching: upper_bound must have N = {n} entries, got {ub.shape[0]}")
        below = undecided & (ub < th_lo) & ~need
        values[below] = ub[below]
        undecided &= ~below
    todo = np.nonzero(undecided)[0]
    if todo.size == 0:
        return values, exact
    pts_T = np.ascontiguousarray(index.pts.T)
    s_all = _singular_values(R_e[todo])
    R_inv = np.linalg.inv(R_e[todo])
    # s_max(A) for A = R_e^-1 R_g, with a margin (1 for proper rotations up to rounding).
    s_A = _singular_values(np.matmul(R_inv, R_g[todo]))[:, 0] * (1.0 + _SAFETY)
    for k, i in enumerate(todo.tolist()):
        p_g_T = R_g[i].dot(pts_T) + t_g[i].reshape(3, 1)  # bop's transform_pts_Rt, transposed
        q = (R_inv[k].dot(p_g_T - t_e[i].reshape(3, 1))).T  # [P, 3] model frame
        s_max, s_min = s_all[k, 0] * (1.0 + _SAFETY), s_all[k, 2] * (1.0 - _SAFETY)
        bounds = _PointBounds.from_sample(index, q, s_A[k])
        value = _decide_from_bounds(bounds, s_min, s_max, th_lo, th_hi, need[i])
        while value is None and bounds.unrefined.any():
            bounds.refine(index, q, _points_to_refine(bounds, s_min, s_max, th_lo, th_hi, need[i]))
            value = _decide_from_bounds(bounds, s_min, s_max, th_lo, th_hi, need[i])
        if value is not None:
            values[i] = value
        else:  # every nearest neighbour is exact
            proper = s_all[k, 0] / s_all[k, 2] - 1.0 <= _ORTHO_TOL
            values[i], exact[i] = _decide_from_neighbours(index, R_e[i], t_e[i], R_g[i], t_g[i], p_g_T, bounds.nearest,
                                                          proper, s_min, s_max, th_lo, th_hi, need[i])
    return values, exact



@dataclass(eq=False)
class _PointBounds:
    """Per-point bounds ``lower [P] <= d_i <= upper [P]`` of the distance from each GT-posed point (in the estimate's
    model frame) to its nearest model point, with ``nearest [P]`` the index of a candidate model point (the exact
    nearest one where ``unrefined`` is False). Arrays this module owns, tightened in place by :meth:`refine`."""

    lower: np.ndarray
    upper: np.ndarray
    nearest: np.ndarray
    unrefined: np.ndarray

    @classmethod
    def from_sample(cls, index: AdiIndex, q: np.ndarray, s_A: float) -> "_PointBounds":
        """Bounds from the exact nearest neighbours of the sample points (distance is 1-Lipschitz):
        ``d_i >= d_s - |q_i - q_s| >= d_s - s_max(A) |x_i - x_s|`` for the k nearest samples s, and
        ``d_i <= |q_i - x_nn(s)|`` for the nearest sample s (a candidate point)."""
        med_idx = index.medium_idx
        assign_T, dist_T = np.ascontiguousarray(index.medium_assign.T), np.ascontiguousarray(index.medium_dist.T)
        d_s, j_s = index.tree.query(q[med_idx], k=1, workers=_WORKERS if med_idx.size >= _PARALLEL_MIN else 1)
        lower = np.zeros(index.pts.shape[0])
        for c in range(assign_T.shape[0]):  # max over the k samples, column by column (contiguous, no [P, k] temp)
            np.maximum(lower, d_s[assign_T[c]] - s_A * dist_T[c], out=lower)
        nearest = j_s[index.medium_assign[:, 0]]
        diff = q - index.pts[nearest]
        upper = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        lower[med_idx], upper[med_idx] = d_s, d_s
        unrefined = np.ones(index.pts.shape[0], dtype=bool)
        unrefined[med_idx] = False
        return cls(lower, upper, nearest, unrefined)

    def refine(self, index: AdiIndex, q: np.ndarray, pick: np.ndarray) -> None:
        """Exact nearest neighbours of the points ``pick``: their bounds become the exact distance."""
        d, nearest = index.tree.query(q[pick], k=1, workers=_WORKERS if pick.size >= _PARALLEL_MIN else 1)
        self.lower[pick], self.upper[pick], self.nearest[pick] = d, d, nearest
        self.unrefined[pick] = False


def _decide_from_bounds(bounds: _PointBounds, s_min: float, s_max: float, th_lo: float, th_hi: float,
                        need_value: bool) -> float | None:
    """A bound of ADI that decides the pair (a lower bound at or above the threshold, or an upper bound below it
    when the value is not needed), or None while the bounds straddle the threshold."""
    lower, upper = s_min * bounds.lower.mean(), s_max * bounds.upper.mean()
    if lower >= th_hi:
        return lower
    if upper < th_lo and not need_value:
        return upper
    return None


def _points_to_refine(bounds: _PointBounds, s_min: float, s_max: float, th_lo: float, th_hi: float,
                      need_value: bool) -> np.ndarray:
    """The unrefined points with the widest bounds: enough of them to close the smaller of the two distances to a
    decision (with a 1.5x margin, and at least 1/20 of them), all of them if a value is needed; in file order
    (cache-friendly queries)."""
    cand = np.nonzero(bounds.unrefined)[0]
    if need_value:
        return cand
    gap = (bounds.upper - bounds.lower)[cand]
    n_pts = bounds.lower.shape[0]
    needed = min(bounds.upper.sum() - n_pts * th_lo / s_max, n_pts * th_hi / s_min - bounds.lower.sum())
    order = np.argsort(gap)[::-1]
    csum = np.cumsum(gap[order])
    n_pick = int(np.searchsorted(csum, _REFINE_OVERSHOOT * max(needed, 0.0))) + 1
    return np.sort(cand[order[: max(n_pick, cand.size // _REFINE_MIN_FRACTION_INV, 1)]])


def _decide_from_neighbours(index: AdiIndex, R_e, t_e, R_g, t_g, p_g_T: np.ndarray, nearest: np.ndarray, proper: bool,
                            s_min: float, s_max: float, th_lo: float, th_hi: float, need_value: bool
                            ) -> tuple[float, bool]:
    """``(value, exact)`` once every nearest neighbour is exact: bop's value for a proper rotation; otherwise the
    value scaled into a bound when that decides the pair, else bop's ADI computed directly."""
    v = _exact_from_indices(index, R_e, t_e, p_g_T, nearest)
    if proper:
        return v, True
    if v < th_lo and not need_value:
        return v, False
    if v / (s_max / s_min) >= th_hi:
        return v / (s_max / s_min), False
    return pe.adi_many(R_e[None], t_e[None], R_g[None], t_g[None], index.pts)[0], True
