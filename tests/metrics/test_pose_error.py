"""Pose errors on tiny hand-computed scenes, and bit-equality of the vectorised variants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.metrics import pose_error as pe

CUBE = np.array([[x, y, z] for x in (-10.0, 10.0) for y in (-10.0, 10.0) for z in (-10.0, 10.0)])
# Deliberately asymmetric point set (no rotational symmetry), mm.
ASYM = np.array([[0.0, 0.0, 0.0], [30.0, 0.0, 0.0], [0.0, 20.0, 0.0], [0.0, 0.0, 10.0], [5.0, 7.0, -3.0]])
K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
I3 = np.eye(3)


def rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def test_add_pure_translation_is_its_norm():
    t_g = np.array([0.0, 0.0, 1000.0])
    t_e = t_g + np.array([3.0, 4.0, 0.0])
    assert pe.add(I3, t_e, I3, t_g, ASYM) == pytest.approx(5.0, abs=1e-12)
    assert pe.te(t_e, t_g) == pytest.approx(5.0, abs=1e-12)
    assert pe.re(I3, I3) == 0.0


def test_add_rotation_hand_value():
    # 90 deg about z moves (30,0,0)->(0,30,0): |d| = 30*sqrt(2); (0,20,0)->(-20,0,0): 20*sqrt(2); z axis points stay.
    e = pe.add(rot_z(90), np.zeros(3), I3, np.zeros(3), ASYM)
    expected = (0 + 30 * math.sqrt(2) + 20 * math.sqrt(2) + 0 + math.sqrt(2) * math.hypot(5, 7)) / 5
    assert e == pytest.approx(expected, rel=1e-12)
    assert pe.re(rot_z(90), I3) == pytest.approx(90.0, abs=1e-9)


def test_adi_of_symmetric_object_under_its_symmetry_is_zero():
    # The cube's vertex set maps onto itself under 90 deg about z: ADI = 0 while ADD > 0.
    t = np.array([5.0, -3.0, 800.0])
    assert pe.adi(rot_z(90), t, I3, t, CUBE) == pytest.approx(0.0, abs=1e-12)
    assert pe.add(rot_z(90), t, I3, t, CUBE) == pytest.approx(20.0, rel=1e-12)  # each vertex moves 20 mm
    syms = (np.stack([I3, rot_z(90)]), np.zeros((2, 3)))
    assert pe.mssd(rot_z(90), t, I3, t, CUBE, syms) == pytest.approx(0.0, abs=1e-12)
    assert pe.mspd(rot_z(90), t, I3, t, K, CUBE, syms) == pytest.approx(0.0, abs=1e-9)


def test_adi_direction_gt_to_estimate():
    # Points x = 0, 1, 10 on a line (a set for which the two directions differ; with two points they would not).
    pts = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    e = pe.adi(I3, np.zeros(3), I3, np.array([9.0, 0.0, 0.0]), pts)
    # GT points 9, 10, 19 -> nearest estimate points 10, 10, 10: (1 + 0 + 9) / 3 (bop's direction, GT -> estimate).
    # The reverse, estimate points 0, 1, 10 -> GT points 9, 9, 10, would give (9 + 8 + 0) / 3.
    assert e == pytest.approx(10.0 / 3.0, abs=1e-12)


def test_mssd_is_max_over_points_and_min_over_symmetries():
    t = np.array([0.0, 0.0, 500.0])
    # rotation of 180 deg about z; symmetry set {I}: max displacement = 2 * max radius in xy.
    e = pe.mssd(rot_z(180), t, I3, t, ASYM, (I3[None], np.zeros((1, 3))))
    assert e == pytest.approx(60.0, rel=1e-12)  # point (30,0,0) -> (-30,0,0)
    e2 = pe.mssd(rot_z(180), t, I3, t, ASYM, (np.stack([I3, rot_z(180)]), np.zeros((2, 3))))
    assert e2 == pytest.approx(0.0, abs=1e-12)


def test_proj_pure_lateral_translation():
    # Shift by dx at depth Z moves every projection by f * dx / Z when all points share Z.
    pts = np.array([[0.0, 0.0, 0.0], [10.0, 5.0, 0.0], [-4.0, 2.0, 0.0]])
    e = pe.proj(I3, np.array([2.0, 0.0, 1000.0]), I3, np.array([0.0, 0.0, 1000.0]), K, pts)
    assert e == pytest.approx(500.0 * 2.0 / 1000.0, rel=1e-12)


def test_project_pts_convention():
    uv = pe.project_pts(np.array([[0.0, 0.0, 0.0], [10.0, -20.0, 0.0]]), K, I3, np.array([0.0, 0.0, 1000.0]))
    np.testing.assert_allclose(uv, [[320.0, 240.0], [325.0, 230.0]], rtol=0, atol=1e-12)


def test_re_uses_inverse_not_transpose():
    # A slightly non-orthonormal "rotation": inv and transpose differ.
    R_g = rot_z(10) * 1.001
    expected = math.degrees(math.acos(min(1.0, max(-1.0, 0.5 * (np.trace(rot_z(10) @ np.linalg.inv(R_g)) - 1)))))
    assert pe.re(rot_z(10), R_g) == expected
    with_transpose = math.degrees(math.acos(min(1.0, max(-1.0, 0.5 * (np.trace(rot_z(10) @ R_g.T) - 1)))))
    assert pe.re(rot_z(10), R_g) != with_transpose


def test_re_clips_cosine():
    assert pe.re(I3 * (1 + 1e-12), I3) == 0.0
    assert pe.re(rot_z(180), I3) == pytest.approx(180.0, abs=1e-9)


@pytest.fixture
def many_pairs():
    rng = np.random.default_rng(3)
    n = 7
    from scipy.spatial.transform import Rotation

    R_g = Rotation.random(n, random_state=1).as_matrix()
    R_e = (Rotation.from_matrix(R_g) * Rotation.from_rotvec(rng.normal(size=(n, 3)) * 0.1)).as_matrix()
    t_g = np.column_stack([rng.normal(size=(n, 2)) * 50, 800 + rng.normal(size=n) * 100])
    t_e = t_g + rng.normal(size=(n, 3)) * 10
    pts = rng.normal(size=(300, 3)) * 30
    syms = (np.stack([I3, rot_z(180)]), np.array([[0.0, 0.0, 0.0], [0.5, -0.2, 0.1]]))
    return R_e, t_e, R_g, t_g, pts, syms


def test_vectorised_variants_are_bit_identical(many_pairs):
    R_e, t_e, R_g, t_g, pts, syms = many_pairs
    n = R_e.shape[0]
    one = lambda f, *a: np.array([f(*(x[i] for x in a[:4]), *a[4:]) for i in range(n)])  # noqa: E731
    assert np.array_equal(pe.add_many(R_e, t_e, R_g, t_g, pts), one(pe.add, R_e, t_e, R_g, t_g, pts))
    assert np.array_equal(pe.adi_many(R_e, t_e, R_g, t_g, pts), one(pe.adi, R_e, t_e, R_g, t_g, pts))
    assert np.array_equal(pe.proj_many(R_e, t_e, R_g, t_g, K, pts), one(pe.proj, R_e, t_e, R_g, t_g, K, pts))
    assert np.array_equal(pe.mssd_many(R_e, t_e, R_g, t_g, pts, syms), one(pe.mssd, R_e, t_e, R_g, t_g, pts, syms))
    assert np.array_equal(
        pe.mspd_many(R_e, t_e, R_g, t_g, K, pts, syms), one(pe.mspd, R_e, t_e, R_g, t_g, K, pts, syms)
    )
    assert np.array_equal(pe.re_many(R_e, R_g), np.array([pe.re(R_e[i], R_g[i]) for i in range(n)]))
    assert np.array_equal(pe.te_many(t_e, t_g), np.array([pe.te(t_e[i], t_g[i]) for i in range(n)]))


def test_thresholds_are_bop_floats():
    assert pe.BOP19_THRESHOLDS_MSSD[2] == 0.15000000000000002
    assert pe.BOP19_THRESHOLDS_MSSD[6] == 0.35000000000000003
    assert len(pe.BOP19_VSD_TAUS) == 10
    assert pe.BOP19_THRESHOLDS_MSPD == (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0)


def test_bad_shapes_raise_typed_errors():
    with pytest.raises(ShapeError, match="pts must be"):
        pe.add(I3, np.zeros(3), I3, np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(ShapeError, match="R_e must be"):
        pe.re(np.eye(4), I3)
    with pytest.raises(InvalidInputError, match="syms must be a pair"):
        pe.mssd(I3, np.zeros(3), I3, np.zeros(3), ASYM, 5)
    with pytest.raises(ShapeError, match="same N"):
        pe.add_many(np.stack([I3] * 2), np.zeros((2, 3)), np.stack([I3] * 3), np.zeros((3, 3)), ASYM)


def test_vsd_hand_computed_depths():
    # Flat 4x4 scene. GT renders depth 100 on the left half; estimate on the left 3 columns at depth 100.
    H, W = 4, 4
    Kv = np.array([[100.0, 0, 2.0], [0, 100.0, 2.0], [0, 0, 1]])
    depth_test = np.zeros((H, W))

    def render(R, t):
        d = np.zeros((H, W))
        cols = 2 if t[0, 0] == 0 else 3
        d[:, :cols] = 100.0
        return d

    errs = pe.vsd(I3, np.array([1.0, 0, 0]), I3, np.zeros(3), depth_test, Kv, 15.0, [0.5], True, 100.0, render)
    # missing test depth -> everything rendered is visible; union 12 px, intersection 8 px with equal distance.
    assert errs == [pytest.approx(4 / 12)]
    none = pe.vsd(I3, np.zeros(3), I3, np.zeros(3), depth_test, Kv, 15.0, [0.05, 0.5], True, 100.0, lambda R, t: np.zeros((H, W)))
    assert none == [1.0, 1.0]


def test_overlapping_sphere_projections():
    assert pe.overlapping_sphere_projections(10.0, np.array([0, 0, 100.0]), np.array([1.0, 0, 100.0]))
    assert not pe.overlapping_sphere_projections(10.0, np.array([0, 0, 100.0]), np.array([50.0, 0, 100.0]))
    assert not pe.overlapping_sphere_projections(10.0, np.array([0, 0, 0.0]), np.array([0.0, 0, 100.0]))


def test_fused_variants_are_bit_identical(many_pairs):
    R_e, t_e, R_g, t_g, pts, syms = many_pairs
    add_v, mssd_v = pe.add_mssd_many(R_e, t_e, R_g, t_g, pts, syms)
    assert np.array_equal(add_v, pe.add_many(R_e, t_e, R_g, t_g, pts))
    assert np.array_equal(mssd_v, pe.mssd_many(R_e, t_e, R_g, t_g, pts, syms))
    proj_v, mspd_v = pe.proj_mspd_many(R_e, t_e, R_g, t_g, K, pts, syms)
    assert np.array_equal(proj_v, pe.proj_many(R_e, t_e, R_g, t_g, K, pts))
    assert np.array_equal(mspd_v, pe.mspd_many(R_e, t_e, R_g, t_g, K, pts, syms))
    with pytest.raises(InvalidInputError, match="first symmetry must be the exact identity"):
        pe.add_mssd_many(R_e, t_e, R_g, t_g, pts, (syms[0][::-1], syms[1][::-1]))


def test_vsd_window_equals_full_image_computation():
    """vsd_from_depths works in the bounding box of the rendered pixels: compare with a full-image reference."""
    rng = np.random.default_rng(0)
    Kv = np.array([[300.0, 0, 31.3], [0, 310.0, 22.7], [0, 0, 1]])
    d_test = (rng.random((48, 64)) * 400 + 300).astype(np.float32)
    d_test[rng.random((48, 64)) < 0.2] = 0
    d_g = np.zeros((48, 64))
    d_g[10:30, 12:40] = 500 + rng.random((20, 28)) * 30
    d_e = np.zeros((48, 64))
    d_e[14:33, 20:45] = 505 + rng.random((19, 25)) * 30
    taus = [0.05, 0.1, 0.3]

    def reference(d_e, d_g):  # bop_toolkit's vsd on full images
        dt, dg, de = (pe.depth_im_to_dist_im(x, Kv) for x in (d_test, d_g, d_e))
        vis = lambda t, m: np.logical_and(np.logical_or(m.astype(np.float32) - t.astype(np.float32) <= 15.0, t == 0), m > 0)  # noqa: E731
        vg = vis(dt, dg)
        ve = np.logical_or(vis(dt, de), np.logical_and(vg, de > 0))
        inter, union = np.logical_and(vg, ve), np.logical_or(vg, ve)
        dists = np.abs(dg[inter] - de[inter]) / 80.0
        return [float((np.sum(dists >= t) + union.sum() - inter.sum()) / float(union.sum())) for t in taus]

    assert pe.vsd_from_depths(d_e, d_g, d_test, Kv, 15.0, taus, True, 80.0) == reference(d_e, d_g)
    assert pe.vsd_from_depths(np.zeros((48, 64)), np.zeros((48, 64)), d_test, Kv, 15.0, taus, True, 80.0) == [1.0] * 3
