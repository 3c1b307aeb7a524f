"""Rotation conversions: known values, independent algorithms (matrix_exp, scipy), round trips, 0 and pi, grads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.geometry import (
    axis_angle_to_matrix,
    euler_to_matrix,
    hat,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    orthonormalize,
    quaternion_to_matrix,
    random_rotations,
    rotation_6d_to_matrix,
    rotation_angle,
)

F64 = torch.float64
finite = st.floats(-1.0, 1.0, allow_nan=False)
vec3 = st.tuples(finite, finite, finite)
SETTINGS = settings(max_examples=40, deadline=None)


def _unit(v):
    v = torch.as_tensor(v, dtype=F64)
    return v / v.norm()


def _assert_rotation(R, atol):
    eye = torch.eye(3, dtype=R.dtype, device=R.device).expand(R.shape)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, rtol=0, atol=atol)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype, device=R.device),
                               rtol=0, atol=atol)


def test_hat_is_cross_product(device, dtype, tols):
    g = torch.Generator().manual_seed(0)
    v, u = torch.randn(2, 5, 3, generator=g, dtype=dtype).to(device)
    torch.testing.assert_close((hat(v) @ u[..., None])[..., 0], torch.linalg.cross(v, u, dim=-1), **tols)


def test_axis_angle_known_values(device, dtype):
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=dtype, device=device))
    # +90 deg about z maps x to y and y to -x.
    torch.testing.assert_close(R @ torch.tensor([1.0, 0, 0], dtype=dtype, device=device),
                               torch.tensor([0.0, 1, 0], dtype=dtype, device=device), rtol=0, atol=1e-6)
    torch.testing.assert_close(R[:, 1], torch.tensor([-1.0, 0, 0], dtype=dtype, device=device), rtol=0, atol=1e-6)
    assert R.dtype == dtype and R.device.type == device.type
    assert torch.equal(axis_angle_to_matrix(torch.zeros(3, dtype=dtype, device=device)),
                       torch.eye(3, dtype=dtype, device=device))


@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-7, 1e-4, 0.999e-3, 1.001e-3, 0.5, 2.0, math.pi - 1e-6, math.pi])
def test_axis_angle_matches_matrix_exp(angle):
    w = _unit([0.3, -0.5, 0.8]) * angle
    torch.testing.assert_close(axis_angle_to_matrix(w), torch.linalg.matrix_exp(hat(w)), rtol=0, atol=2e-15)
    w32 = w.float()
    torch.testing.assert_close(axis_angle_to_matrix(w32), torch.linalg.matrix_exp(hat(w)).float(), rtol=0,
                               atol=6e-7)


def test_leading_dims(device):
    w = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1), dtype=F64).to(device)
    R = axis_angle_to_matrix(w)
    assert R.shape == (2, 4, 3, 3)
    torch.testing.assert_close(R[1, 2], axis_angle_to_matrix(w[1, 2]), rtol=0, atol=0)
    assert matrix_to_axis_angle(R).shape == (2, 4, 3)
    assert matrix_to_quaternion(R).shape == (2, 4, 4)
    assert matrix_to_rotation_6d(R).shape == (2, 4, 6)
    assert rotation_angle(R).shape == (2, 4)
    assert euler_to_matrix(w).shape == (2, 4, 3, 3)
    assert orthonormalize(R).shape == (2, 4, 3, 3)


@SETTINGS
@given(axis=vec3, angle=st.floats(0.0, math.pi - 1e-6))
def test_axis_angle_round_trip(axis, angle):
    a = torch.tensor(axis, dtype=F64)
    if a.norm() < 1e-3:
        a = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
    w = a / a.norm() * angle
    R = axis_angle_to_matrix(w)
    _assert_rotation(R, 1e-14)
    torch.testing.assert_close(matrix_to_axis_angle(R), w, rtol=0, atol=1e-9)
    torch.testing.assert_close(rotation_angle(R), torch.tensor(angle, dtype=F64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("axis", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0.2, -0.7, 0.4), (-1, -2, -3)])
def test_log_at_pi_and_near_pi(axis):
    for angle in (math.pi, math.pi - 1e-9, math.pi - 1e-5):
        w = _unit(axis) * angle
        R = axis_angle_to_matrix(w)
        w2 = matrix_to_axis_angle(R)
        assert abs(w2.norm().item() - angle) < 1e-9
        # At pi the axis sign is arbitrary; both represent the same rotation.
        torch.testing.assert_close(axis_angle_to_matrix(w2), R, rtol=0, atol=1e-12)
        assert abs(abs(torch.dot(w2 / w2.norm(), _unit(axis)).item()) - 1.0) < 1e-12
        assert abs(rotation_angle(R).item() - angle) < 1e-12


def test_small_angles_keep_relative_precision():
    for angle in (1e-12, 1e-8, 1e-5):
        w = _unit([0.6, -0.8, 0.0]) * angle
        R = axis_angle_to_matrix(w)
        torch.testing.assert_close(matrix_to_axis_angle(R), w, rtol=1e-6, atol=0)
        assert abs(rotation_angle(R).item() / angle - 1.0) < 1e-6
    # float32 too: the arccos formula would give 0 or ~3e-4 here
    R32 = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1e-5]))
    assert abs(rotation_angle(R32).item() - 1e-5) < 1e-9


def test_quaternion_known_and_conventions(device, dtype):
    s = math.sqrt(0.5)
    q = torch.tensor([s, 0.0, 0.0, s], dtype=dtype, device=device)  # +90 deg about z, (w, x, y, z)
    R = quaternion_to_matrix(q)
    torch.testing.assert_close(R, axis_angle_to_matrix(torch.tensor([0, 0, math.pi / 2], dtype=dtype,
                                                                    device=device)), rtol=0, atol=1e-6)
    torch.testing.assert_close(quaternion_to_matrix(-q), R, rtol=0, atol=0)
    torch.testing.assert_close(quaternion_to_matrix(3.0 * q), R, rtol=0, atol=1e-6)  # normalised first
    torch.testing.assert_close(matrix_to_quaternion(R), q, rtol=0, atol=1e-6)


@pytest.mark.parametrize("diag", [(1, -1, -1), (-1, 1, -1), (-1, -1, 1)])
def test_quaternion_of_half_turns(diag):
    R = torch.diag(torch.tensor(diag, dtype=F64))
    q = matrix_to_quaternion(R)
    expected = torch.zeros(4, dtype=F64)
    expected[1 + diag.index(1)] = 1.0
    torch.testing.assert_close(q, expected, rtol=0, atol=0)


@SETTINGS
@given(q=st.tuples(finite, finite, finite, finite))
def test_quaternion_round_trip_vs_scipy(q):
    q = torch.tensor(q, dtype=F64)
    if q.norm() < 1e-2:
        q = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=F64)
    q = q / q.norm()
    q = torch.where(q[0] < 0, -q, q)
    R = quaternion_to_matrix(q)
    ref = Rotation.from_quat(q[[1, 2, 3, 0]].numpy()).as_matrix()  # scipy is scalar-last
    np.testing.assert_allclose(R.numpy(), ref, rtol=0, atol=1e-14)
    q2 = matrix_to_quaternion(R)
    assert q2[0] >= 0
    if q[0] > 1e-9:  # unique representative when w > 0
        torch.testing.assert_close(q2, q, rtol=0, atol=1e-12)
    torch.testing.assert_close(quaternion_to_matrix(q2), R, rtol=0, atol=1e-14)


def test_rotation_6d_layout_and_round_trip(device, dtype, tols):
    R = random_rotations(7, generator=torch.Generator().manual_seed(3), dtype=dtype, device=device)
    d6 = matrix_to_rotation_6d(R)
    torch.testing.assert_close(d6[:, :3], R[:, :, 0], rtol=0, atol=0)  # first column: r11, r21, r31
    torch.testing.assert_close(d6[:, 3:], R[:, :, 1], rtol=0, atol=0)  # second column: r12, r22, r32
    torch.testing.assert_close(rotation_6d_to_matrix(d6), R, **tols)


def test_rotation_6d_gram_schmidt():
    a1 = torch.tensor([0.0, 3.0, 0.0], dtype=F64)
    a2 = torch.tensor([5.0, 7.0, 0.0], dtype=F64)
    R = rotation_6d_to_matrix(torch.cat([a1, a2]))
    torch.testing.assert_close(R, torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]], dtype=F64), rtol=0, atol=0)
    x = torch.randn(100, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    _assert_rotation(rotation_6d_to_matrix(x), 1e-14)
    assert torch.isfinite(rotation_6d_to_matrix(torch.zeros(6))).all()


def test_euler_xyz_is_extrinsic_rz_ry_rx(device, dtype):
    angles = torch.tensor([[0.3, -1.1, 2.5], [0.0, math.pi / 2, 0.1]], dtype=dtype, device=device)
    R = euler_to_matrix(angles)
    ez = torch.tensor([0.0, 0, 1], dtype=dtype, device=device)
    ey = torch.tensor([0.0, 1, 0], dtype=dtype, device=device)
    ex = torch.tensor([1.0, 0, 0], dtype=dtype, device=device)
    a, b, c = angles[:, 0:1], angles[:, 1:2], angles[:, 2:3]
    expected = axis_angle_to_matrix(ez * c) @ axis_angle_to_matrix(ey * b) @ axis_angle_to_matrix(ex * a)
    torch.testing.assert_close(R, expected, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-14)
    ref = Rotation.from_euler("xyz", angles.double().cpu().numpy()).as_matrix()  # scipy lower case = extrinsic
    np.testing.assert_allclose(R.double().cpu().numpy(), ref, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-14)


@pytest.mark.parametrize("conv", ["zyx", "zxz", "yxy", "xzy"])
def test_euler_other_conventions_match_scipy(conv):
    angles = torch.tensor([0.7, -0.4, 1.9], dtype=F64)
    ref = Rotation.from_euler(conv, angles.numpy()).as_matrix()
    np.testing.assert_allclose(euler_to_matrix(angles, conv).numpy(), ref, rtol=0, atol=1e-14)


def test_rotation_angle_of_relative_rotation():
    R = random_rotations(50, generator=torch.Generator().manual_seed(5), dtype=F64)
    ang = rotation_angle(R)
    ref = Rotation.from_matrix(R.numpy()).magnitude()
    np.testing.assert_allclose(ang.numpy(), ref, rtol=0, atol=1e-12)
    assert float(rotation_angle(torch.eye(3, dtype=F64))) == 0.0
    assert abs(float(rotation_angle(torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=F64)))) - math.pi) < 1e-15


def test_orthonormalize_polar_factor(device):
    g = torch.Generator().manual_seed(6)
    R0 = random_rotations(10, generator=g, dtype=F64, device=device)
    A = torch.randn(10, 3, 3, generator=g, dtype=F64).to(device)
    S = A @ A.transpose(-1, -2) + 0.5 * torch.eye(3, dtype=F64, device=device)  # symmetric positive definite
    torch.testing.assert_close(orthonormalize(R0 @ S), R0, rtol=0, atol=1e-12)  # polar decomposition
    torch.testing.assert_close(orthonormalize(R0), R0, rtol=0, atol=1e-14)
    refl = R0 @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=F64, device=device))
    _assert_rotation(orthonormalize(refl), 1e-12)  # a reflection becomes a proper rotation


def test_random_rotations_deterministic_and_uniform():
    R1 = random_rotations(20000, generator=torch.Generator().manual_seed(7), dtype=F64)
    R2 = random_rotations(20000, generator=torch.Generator().manual_seed(7), dtype=F64)
    assert torch.equal(R1, R2)
    _assert_rotation(R1, 1e-13)
    assert R1.mean(0).abs().max().item() < 0.02  # E[R] = 0 under the Haar measure
    # angle density of a uniform rotation: (1 - cos t) / pi -> mean angle pi/2 + 2/pi
    assert abs(rotation_angle(R1).mean().item() - (math.pi / 2 + 2 / math.pi)) < 0.02


def test_gradcheck():
    g = torch.Generator().manual_seed(8)
    for w in (torch.zeros(3, dtype=F64), torch.full((3,), 1e-5, dtype=F64), torch.randn(2, 3, generator=g, dtype=F64)):
        assert torch.autograd.gradcheck(axis_angle_to_matrix, (w.clone().requires_grad_(),))
    d6 = torch.randn(3, 6, generator=g, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (d6,))
    assert torch.autograd.gradcheck(quaternion_to_matrix, (torch.randn(3, 4, generator=g, dtype=F64).requires_grad_(),))
    assert torch.autograd.gradcheck(euler_to_matrix, (torch.randn(3, 3, generator=g, dtype=F64).requires_grad_(),))
    R = axis_angle_to_matrix(torch.randn(3, 3, generator=g, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(matrix_to_axis_angle, (R,))
    assert torch.autograd.gradcheck(rotation_angle, (R,))


def test_errors():
    with pytest.raises(ShapeError, match=r"axis_angle_to_matrix: axis_angle must have shape \[\*, 3\], got \[4\]"):
        axis_angle_to_matrix(torch.zeros(4))
    with pytest.raises(ShapeError, match=r"matrix_to_quaternion: R must have shape \[\*, 3, 3\], got \[2, 3, 4\]"):
        matrix_to_quaternion(torch.zeros(2, 3, 4))
    with pytest.raises(ShapeError, match=r"rotation_6d_to_matrix: rot6d must have shape \[\*, 6\], got \[3, 3\]"):
        rotation_6d_to_matrix(torch.zeros(3, 3))
    with pytest.raises(InvalidInputError, match="euler_to_matrix: convention must be 3 letters.*got 'xxy'"):
        euler_to_matrix(torch.zeros(3), "xxy")
    with pytest.raises(InvalidInputError, match="hat: v must be a floating-point tensor, got dtype torch.int64"):
        hat(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(InvalidInputError, match="random_rotations: n must be an int >= 0, got -1"):
        random_rotations(-1)
