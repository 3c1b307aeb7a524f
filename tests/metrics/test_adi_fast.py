"""Fast ADI (adi_fast) against bop's exact per-pair route (pose_error.adi_many) on synthetic point sets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.metrics import adi_fast as af
from iterpose.metrics import pose_error as pe


def _surface_points(n: int, seed: int) -> np.ndarray:
    """Points on an asymmetric ellipsoid-ish surface (mm), like a resampled model surface."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pts = u * np.array([50.0, 30.0, 20.0])
    pts[:, 0] += 8.0 * (pts[:, 1] > 0)  # break the symmetry
    return pts


def _pairs(n: int, seed: int, rot_sigma: float, t_sigma: float):
    rng = np.random.default_rng(seed)
    R_g = Rotation.random(n, random_state=seed).as_matrix()
    R_e = (Rotation.from_matrix(R_g) * Rotation.from_rotvec(rng.normal(size=(n, 3)) * rot_sigma)).as_matrix()
    t_g = np.column_stack([rng.normal(size=(n, 2)) * 50, 700 + rng.normal(size=n) * 50])
    t_e = t_g + rng.normal(size=(n, 3)) * t_sigma
    return R_e, t_e, R_g, t_g


PTS = _surface_points(600, 0)
DIAM = float(np.max(np.linalg.norm(PTS[:, None] - PTS[None], axis=2)))


@pytest.fixture(scope="module")
def index():
    return af.build_adi_index(PTS, DIAM)


def test_model_frame_equals_bop_route(index):
    R_e, t_e, R_g, t_g = _pairs(12, 1, 0.3, 10.0)
    ref = pe.adi_many(R_e, t_e, R_g, t_g, PTS)
    got = af.adi_model_frame(index, R_e, t_e, R_g, t_g)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


def test_model_frame_bounds_bop_value_for_non_orthonormal_rotations(index):
    R_e, t_e, R_g, t_g = _pairs(12, 2, 0.3, 10.0)
    R_e = R_e * np.array([1.0 + 2e-3, 1.0, 1.0 - 1e-3])[None, :, None]  # rows scaled: not a rotation
    ref = pe.adi_many(R_e, t_e, R_g, t_g, PTS)
    got = af.adi_model_frame(index, R_e, t_e, R_g, t_g)
    s = np.linalg.svd(R_e, compute_uv=False)
    kappa = s[:, 0] / s[:, 2]
    assert np.all(got >= ref * (1 - 1e-12)) and np.all(got <= kappa * ref * (1 + 1e-12))


def test_lower_bound_is_below_exact(index):
    R_e, t_e, R_g, t_g = _pairs(40, 3, 1.0, 40.0)
    ref = pe.adi_many(R_e, t_e, R_g, t_g, PTS)
    lb = af.adi_lower_bound(index, R_e, t_e, R_g, t_g)
    assert lb.shape == (40,) and np.all(lb >= 0) and np.all(lb <= ref)
    assert np.any(lb > 0.5 * ref)  # not a trivial bound for far-off poses


@pytest.mark.parametrize("orthonormal", [True, False])
def test_decisions_equal_exact_around_threshold(index, orthonormal):
    R_e, t_e, R_g, t_g = _pairs(60, 4, 0.25, 8.0)
    if not orthonormal:
        R_e = R_e * (1.0 + 5e-4)
    ref = pe.adi_many(R_e, t_e, R_g, t_g, PTS)
    th = float(np.median(ref))  # half of the pairs on each side, several within a few percent of it
    assert np.sum(np.abs(ref / th - 1) < 0.05) >= 4
    add = pe.add_many(R_e, t_e, R_g, t_g, PTS)
    values, exact = af.adi_for_matching(index, R_e, t_e, R_g, t_g, th, upper_bound=add)
    np.testing.assert_array_equal(values < th, ref < th)
    if orthonormal:
        np.testing.assert_allclose(values[exact], ref[exact], rtol=1e-12, atol=0)
    assert not exact.all()  # some pairs were decided by bounds alone
    need = np.ones(60, dtype=bool)
    values_n, exact_n = af.adi_for_matching(index, R_e, t_e, R_g, t_g, th, need_value=need)
    below = ref < th
    assert exact_n[below].all()
    np.testing.assert_allclose(values_n[below], ref[below], rtol=1e-12, atol=0)
    assert np.all(values_n[~below] >= th)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="diameter"):
        af.build_adi_index(PTS, 0.0)
    with pytest.raises(ShapeError, match="pts must be"):
        af.build_adi_index(np.zeros((5, 2)), 10.0)
    idx = af.build_adi_index(PTS, DIAM)
    R_e, t_e, R_g, t_g = _pairs(3, 5, 0.1, 1.0)
    with pytest.raises(ShapeError, match="need_value must have N = 3"):
        af.adi_for_matching(idx, R_e, t_e, R_g, t_g, 5.0, need_value=[True])
    with pytest.raises(ShapeError, match="upper_bound must have N = 3"):
        af.adi_for_matching(idx, R_e, t_e, R_g, t_g, 5.0, upper_bound=[1.0, 2.0])
