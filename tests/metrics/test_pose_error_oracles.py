"""Pose errors against values derived by hand or by a second algorithm (not a second copy of the same derivation).

* ADD-S direction (bop_toolkit: for each GT-posed point, the nearest estimate-posed point) on a point set where the
  two directions differ, through every ADI implementation (per pair, ``*_many``, the model-frame KD-tree route, the
  threshold-deciding route, the torch batched one).
* Symmetries with a translation offset, GT rotated so that ``R_g t_S != t_S``: MSSD / MSPD per pair, ``*_many`` and
  the fused variants give the hand value.
* The ``*_many`` and fused variants against hand values and against a brute-force pure-Python oracle that maps the
  points one by one (symmetry applied to the model point, then the pose; pinhole projection written out).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from iterpose.metrics import adi_fast as af
from iterpose.metrics import batched as B
from iterpose.metrics import pose_error as pe

I3 = np.eye(3)
RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
RZ180 = np.diag([-1.0, -1.0, 1.0])
F, CX, CY = 500.0, 320.0, 240.0
K = np.array([[F, 0.0, CX], [0.0, F, CY], [0.0, 0.0, 1.0]])

# ----------------------------------------------------------------------------------------------------------------
# ADD-S direction
# ----------------------------------------------------------------------------------------------------------------
# Points x = 0, 1, 10 mm on a line. Estimate at t_e, GT at t_e + (9, 0, 0): GT points 9, 10, 19 -> nearest estimate
# points 10, 10, 10 -> (1 + 0 + 9) / 3. The reverse (estimate points 0, 1, 10 -> GT points 9, 9, 10) is (9 + 8 + 0) / 3.
LINE = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
T_E = np.array([0.0, 0.0, 500.0])
T_G = T_E + np.array([9.0, 0.0, 0.0])
ADI_BOP = 10.0 / 3.0
ADI_REVERSED = 17.0 / 3.0


@pytest.mark.parametrize("R", [I3, RZ90], ids=["identity", "rz90"])
def test_adi_direction_per_pair_and_many(R):
    # a common rotation R keeps the distances: (R x + R d) vs (R x) -> the same 1-D configuration, turned
    t_g = T_E + R @ np.array([9.0, 0.0, 0.0])
    assert pe.adi(R, T_E, R, t_g, LINE) == pytest.approx(ADI_BOP, abs=1e-12)
    assert pe.adi(R, t_g, R, T_E, LINE) == pytest.approx(ADI_REVERSED, abs=1e-12)  # roles swapped
    many = pe.adi_many(np.stack([R, R]), np.stack([T_E, t_g]), np.stack([R, R]), np.stack([t_g, T_E]), LINE)
    np.testing.assert_allclose(many, [ADI_BOP, ADI_REVERSED], rtol=0, atol=1e-12)


def test_adi_direction_fast_routes():
    index = af.build_adi_index(LINE, 10.0)
    args = (I3[None], T_E[None], I3[None], T_G[None])
    assert af.adi_model_frame(index, *args)[0] == pytest.approx(ADI_BOP, abs=1e-12)
    values, exact = af.adi_for_matching(index, *args, threshold_mm=5.0, need_value=[True])
    assert exact[0] and values[0] == pytest.approx(ADI_BOP, abs=1e-12)
    # threshold 4.5 mm lies between the two directions: bop's 3.33 is below it, the reverse 5.67 is not
    values, _ = af.adi_for_matching(index, *args, threshold_mm=4.5)
    assert values[0] < 4.5
    assert af.adi_lower_bound(index, *args)[0] <= ADI_BOP + 1e-12


def test_adi_direction_torch_batched():
    T_e = torch.eye(4, dtype=torch.float64)[None].clone()
    T_g = T_e.clone()
    T_e[0, :3, 3] = torch.from_numpy(T_E / 1000)
    T_g[0, :3, 3] = torch.from_numpy(T_G / 1000)
    pts = torch.from_numpy(LINE / 1000)
    assert B.adi_m(T_e, T_g, pts).item() == pytest.approx(ADI_BOP / 1000, abs=1e-15)
    assert B.adi_m(T_g, T_e, pts).item() == pytest.approx(ADI_REVERSED / 1000, abs=1e-15)


# ----------------------------------------------------------------------------------------------------------------
# Symmetry with a translation offset
# ----------------------------------------------------------------------------------------------------------------
# Box x in [0, 40], y in [-10, 10], z in [-5, 5] mm; symmetry: 180 deg about the z axis through (20, 0, 0):
# x -> R_S x + t_S, R_S = diag(-1, -1, 1), t_S = (40, 0, 0). GT R_g = Rz(90), so R_g t_S = (0, 40, 0) != t_S.
OFF_BOX = np.array([[x, y, z] for x in (0.0, 40.0) for y in (-10.0, 10.0) for z in (-5.0, 5.0)])
SYMS = (np.stack([I3, RZ180]), np.array([[0.0, 0.0, 0.0], [40.0, 0.0, 0.0]]))
T_GT = np.array([0.0, 0.0, 500.0])


def _sym_estimate(shift):
    """The GT pose composed with the symmetry (point-wise: x -> R_g (R_S x + t_S) + t_g), then moved by ``shift``
    (camera frame, mm). Every entry is an exact float (signed permutations, integer mm)."""
    return RZ90 @ RZ180, RZ90 @ np.array([40.0, 0.0, 0.0]) + T_GT + np.asarray(shift, float)


def test_mssd_mspd_with_symmetry_offset_hand_values():
    R_e, t_e = _sym_estimate([3.0, 0.0, 0.0])
    # Every estimate point is its symmetric GT point + (3, 0, 0): MSSD = 3 mm exactly.
    assert pe.mssd(R_e, t_e, RZ90, T_GT, OFF_BOX, SYMS) == 3.0
    # The points lie at depths 495 and 505 mm; a lateral shift of 3 mm moves a projection by f 3 / Z: max at Z = 495.
    expected_px = F * 3.0 / 495.0
    assert pe.mspd(R_e, t_e, RZ90, T_GT, K, OFF_BOX, SYMS) == pytest.approx(expected_px, rel=1e-12)
    # Without the symmetry both are large (the box is turned by 180 deg): the offset symmetry is what wins.
    no_sym = (I3[None], np.zeros((1, 3)))
    assert pe.mssd(R_e, t_e, RZ90, T_GT, OFF_BOX, no_sym) > 40.0
    # vectorised and fused variants, two pairs: the hand values above and the exact symmetric pose (0, 0)
    R2 = np.stack([R_e, _sym_estimate([0, 0, 0])[0]])
    t2 = np.stack([t_e, _sym_estimate([0, 0, 0])[1]])
    Rg2, tg2 = np.stack([RZ90, RZ90]), np.stack([T_GT, T_GT])
    np.testing.assert_array_equal(pe.mssd_many(R2, t2, Rg2, tg2, OFF_BOX, SYMS), [3.0, 0.0])
    np.testing.assert_allclose(pe.mspd_many(R2, t2, Rg2, tg2, K, OFF_BOX, SYMS), [expected_px, 0.0], rtol=1e-12,
                               atol=1e-12)
    add_v, mssd_v = pe.add_mssd_many(R2, t2, Rg2, tg2, OFF_BOX, SYMS)
    np.testing.assert_array_equal(mssd_v, [3.0, 0.0])
    proj_v, mspd_v = pe.proj_mspd_many(R2, t2, Rg2, tg2, K, OFF_BOX, SYMS)
    np.testing.assert_allclose(mspd_v, [expected_px, 0.0], rtol=1e-12, atol=1e-12)
    # ADD / proj of the same pairs use no symmetry: the 180 deg turn about the offset axis moves point x by
    # 2 |x_xy - (20, 0)| (plus the shift for pair 0); for pair 1 each corner moves 2 sqrt(20^2 + 10^2) mm.
    assert add_v[1] == pytest.approx(2.0 * math.hypot(20.0, 10.0), rel=1e-12)
    assert proj_v[1] > 20.0


# ----------------------------------------------------------------------------------------------------------------
# *_many and fused variants: hand values
# ----------------------------------------------------------------------------------------------------------------
PLANAR = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 60.0, 0.0], [40.0, -50.0, 0.0]])


def test_many_variants_hand_values():
    """Pure translations of a planar model at depth 500 mm (f = 500: 1 mm lateral = 1 px), and rotations about the
    optical axis by 30 / 90 / 180 deg for re."""
    shifts = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [-6.0, 8.0, 0.0]])
    t_g = np.tile([0.0, 0.0, 500.0], (3, 1))
    R = np.stack([I3] * 3)
    np.testing.assert_array_equal(pe.add_many(R, t_g + shifts, R, t_g, PLANAR), [5.0, 0.0, 10.0])
    np.testing.assert_array_equal(pe.te_many(t_g + shifts, t_g), [5.0, 0.0, 10.0])
    np.testing.assert_allclose(pe.proj_many(R, t_g + shifts, R, t_g, K, PLANAR), [5.0, 0.0, 10.0], rtol=0,
                               atol=1e-12)
    syms = (I3[None], np.zeros((1, 3)))
    np.testing.assert_array_equal(pe.mssd_many(R, t_g + shifts, R, t_g, PLANAR, syms), [5.0, 0.0, 10.0])
    np.testing.assert_allclose(pe.mspd_many(R, t_g + shifts, R, t_g, K, PLANAR, syms), [5.0, 0.0, 10.0], rtol=0,
                               atol=1e-12)
    add_v, mssd_v = pe.add_mssd_many(R, t_g + shifts, R, t_g, PLANAR, syms)
    np.testing.assert_array_equal(add_v, [5.0, 0.0, 10.0])
    np.testing.assert_array_equal(mssd_v, [5.0, 0.0, 10.0])
    proj_v, mspd_v = pe.proj_mspd_many(R, t_g + shifts, R, t_g, K, PLANAR, syms)
    np.testing.assert_allclose(proj_v, [5.0, 0.0, 10.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(mspd_v, [5.0, 0.0, 10.0], rtol=0, atol=1e-12)
    # ADI: shifts of 5 and 10 mm are below half the smallest point spacing (60 mm): ADI = ADD
    np.testing.assert_allclose(pe.adi_many(R, t_g + shifts, R, t_g, PLANAR), [5.0, 0.0, 10.0], rtol=0, atol=1e-12)
    rz = Rotation.from_euler("z", [[30.0], [90.0], [180.0]], degrees=True).as_matrix()
    np.testing.assert_allclose(pe.re_many(rz, R), [30.0, 90.0, 180.0], rtol=0, atol=1e-6)
    # ADD of a rotation about the optical axis through the model origin: point p moves 2 |p| sin(angle / 2)
    norms = np.linalg.norm(PLANAR, axis=1)
    expected = [float(np.mean(2 * norms * math.sin(math.radians(a) / 2))) for a in (30.0, 90.0, 180.0)]
    np.testing.assert_allclose(pe.add_many(rz, t_g, R, t_g, PLANAR), expected, rtol=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# *_many and fused variants vs a brute-force point-by-point oracle on random poses
# ----------------------------------------------------------------------------------------------------------------
def _oracle(R_e, t_e, R_g, t_g, pts, syms, K):
    """Pure-Python ADD, ADI, proj, MSSD, MSPD of one pair: each model point is mapped on its own (symmetry first,
    in the model frame, then the pose); projections written as (f x / z + c)."""
    def pose(R, t, x):
        return [sum(R[r][c] * x[c] for c in range(3)) + t[r] for r in range(3)]

    def project(X):
        return (K[0][0] * X[0] / X[2] + K[0][2], K[1][1] * X[1] / X[2] + K[1][2])

    P_e = [pose(R_e, t_e, x) for x in pts]
    P_g = [pose(R_g, t_g, x) for x in pts]
    add = sum(math.dist(a, b) for a, b in zip(P_e, P_g)) / len(pts)
    adi = sum(min(math.dist(g, e) for e in P_e) for g in P_g) / len(pts)
    proj = sum(math.dist(project(a), project(b)) for a, b in zip(P_e, P_g)) / len(pts)
    mssd, mspd = math.inf, math.inf
    for R_s, t_s in zip(*syms):
        P_gs = [pose(R_g, t_g, pose(R_s, t_s, x)) for x in pts]
        mssd = min(mssd, max(math.dist(a, b) for a, b in zip(P_e, P_gs)))
        mspd = min(mspd, max(math.dist(project(a), project(b)) for a, b in zip(P_e, P_gs)))
    return add, adi, proj, mssd, mspd


def test_many_and_fused_variants_match_a_point_by_point_oracle():
    rng = np.random.default_rng(11)
    n = 5
    R_g = Rotation.random(n, random_state=4).as_matrix()
    R_e = (Rotation.from_matrix(R_g) * Rotation.from_rotvec(rng.normal(size=(n, 3)) * 0.2)).as_matrix()
    t_g = np.column_stack([rng.normal(size=(n, 2)) * 40, 600 + rng.normal(size=n) * 50])
    t_e = t_g + rng.normal(size=(n, 3)) * 8
    pts = rng.normal(size=(40, 3)) * 25 + np.array([15.0, -5.0, 3.0])  # origin off the centre
    # the box symmetry above and a 120 deg turn about an offset axis, so that offsets matter
    R120 = Rotation.from_euler("x", 120.0, degrees=True).as_matrix()
    syms = (np.stack([I3, RZ180, R120]), np.stack([np.zeros(3), [40.0, 0.0, 0.0], [0.0, 12.0, -7.0]]))
    # estimates 1 and 3 near the GT composed with symmetry 1 and 2 (so that those symmetries win, with offsets)
    for i, k in ((1, 1), (3, 2)):
        R_e[i] = R_g[i] @ syms[0][k] @ Rotation.from_rotvec(rng.normal(size=3) * 0.02).as_matrix()
        t_e[i] = R_g[i] @ syms[1][k] + t_g[i] + rng.normal(size=3)
    Ks = np.stack([K, K * np.array([[1.1, 1, 1.05], [1, 0.9, 0.95], [1, 1, 1]]), K, K, K])
    ref = np.array([_oracle(R_e[i].tolist(), t_e[i].tolist(), R_g[i].tolist(), t_g[i].tolist(), pts.tolist(),
                            (syms[0].tolist(), syms[1].tolist()), Ks[i].tolist()) for i in range(n)])
    close = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pe.add_many(R_e, t_e, R_g, t_g, pts), ref[:, 0], **close)
    np.testing.assert_allclose(pe.adi_many(R_e, t_e, R_g, t_g, pts), ref[:, 1], **close)
    np.testing.assert_allclose(pe.proj_many(R_e, t_e, R_g, t_g, Ks, pts), ref[:, 2], **close)
    np.testing.assert_allclose(pe.mssd_many(R_e, t_e, R_g, t_g, pts, syms), ref[:, 3], **close)
    np.testing.assert_allclose(pe.mspd_many(R_e, t_e, R_g, t_g, Ks, pts, syms), ref[:, 4], **close)
    add_v, mssd_v = pe.add_mssd_many(R_e, t_e, R_g, t_g, pts, syms)
    np.testing.assert_allclose(add_v, ref[:, 0], **close)
    np.testing.assert_allclose(mssd_v, ref[:, 3], **close)
    proj_v, mspd_v = pe.proj_mspd_many(R_e, t_e, R_g, t_g, Ks, pts, syms)
    np.testing.assert_allclose(proj_v, ref[:, 2], **close)
    np.testing.assert_allclose(mspd_v, ref[:, 4], **close)
    # the per-pair functions agree with the same oracle
    for i in range(n):
        assert pe.mssd(R_e[i], t_e[i], R_g[i], t_g[i], pts, syms) == pytest.approx(ref[i, 3], rel=1e-10)
        assert pe.mspd(R_e[i], t_e[i], R_g[i], t_g[i], Ks[i], pts, syms) == pytest.approx(ref[i, 4], rel=1e-10)
        assert pe.adi(R_e[i], t_e[i], R_g[i], t_g[i], pts) == pytest.approx(ref[i, 1], rel=1e-10)
    # pairs 1 and 3 are won by their (offset) symmetry, by far
    no_sym = pe.mssd_many(R_e, t_e, R_g, t_g, pts, (I3[None], np.zeros((1, 3))))
    assert np.all(ref[[1, 3], 3] < 0.3 * no_sym[[1, 3]])
