"""SE(3): exp against scipy's expm, log round trips (incl. near pi), inverse, composition, points."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from scipy.linalg import expm
from hypothesis import strategies as st

from iterpose.errors import ShapeError
from iterpose.geometry import (
    hat,
    make_T,
    random_rotations,
    rotation_angle,
    se3_compose,
    se3_exp,
    se3_inverse,
    se3_log,
    transform_points,
)

F64 = torch.float64
SETTINGS = settings(max_examples=40, deadline=None)


def _expm(xi: torch.Tensor) -> torch.Tensor:
    """The reference exponential: scipy's expm (Al-Mohy & Higham) of the twist matrix. Not torch.linalg.matrix_exp:
    torch 2.13's CPU float64 result is off by 2.4e-11 for a 0.03125 rad rotation about z (found by hypothesis)."""
    return torch.from_numpy(expm(_twist_matrix(xi).double().numpy()))


def _twist_matrix(xi):
    """4x4 element of se(3) for xi = (v, w): [[hat(w), v], [0, 0]]."""
    M = torch.zeros(*xi.shape[:-1], 4, 4, dtype=xi.dtype)
    M[..., :3, :3] = hat(xi[..., 3:])
    M[..., :3, 3] = xi[..., :3]
    return M


def _xi(v, direction, angle, dtype=F64):
    d = torch.tensor(direction, dtype=F64)
    return torch.cat([torch.tensor(v, dtype=F64), d / d.norm() * angle]).to(dtype)


def test_make_T_and_broadcast(device, dtype):
    R = random_rotations(3, generator=torch.Generator().manual_seed(0), dtype=dtype, device=device)
    t = torch.tensor([0.1, -0.2, 0.3], dtype=dtype, device=device)
    T = make_T(R, t)
    assert T.shape == (3, 4, 4) and T.dtype == dtype and T.device.type == device.type
    assert torch.equal(T[:, :3, :3], R)
    assert torch.equal(T[:, :3, 3], t.expand(3, 3))
    assert torch.equal(T[:, 3], torch.tensor([0.0, 0, 0, 1], dtype=dtype, device=device).expand(3, 4))


def test_inverse_and_compose(device, dtype, tols):
    g = torch.Generator().manual_seed(1)
    R = random_rotations(2 * 5, generator=g, dtype=dtype).reshape(2, 5, 3, 3).to(device)
    t = torch.randn(2, 5, 3, generator=g, dtype=dtype).to(device)
    T = make_T(R, t)
    Ti = se3_inverse(T)
    eye = torch.eye(4, dtype=dtype, device=device).expand(2, 5, 4, 4)
    torch.testing.assert_close(se3_compose(T, Ti), eye, **tols)
    torch.testing.assert_close(se3_compose(Ti, T), eye, **tols)
    torch.testing.assert_close(Ti, torch.linalg.inv(T), **tols)
    # frames: T_a_c = T_a_b @ T_b_c maps c-coordinates to a
    X = torch.randn(2, 5, 7, 3, generator=g, dtype=dtype).to(device)
    T2 = make_T(R.flip(1), t.flip(1))
    torch.testing.assert_close(transform_points(se3_compose(T, T2), X), transform_points(T, transform_points(T2, X)),
                               **tols)


@SETTINGS
@given(
    v=st.tuples(*[st.floats(-2.0, 2.0)] * 3),
    direction=st.tuples(*[st.floats(-1.0, 1.0)] * 3).filter(lambda d: sum(x * x for x in d) > 1e-4),
    angle=st.one_of(st.floats(0.0, 1e-3), st.floats(0.0, math.pi - 1e-3), st.floats(0.09, 0.11)),
)
@example(v=(0.0, 0.0, 0.0), direction=(0.0, 0.0, 1.0), angle=0.03125)
def test_exp_matches_matrix_exp_and_log_inverts(v, direction, angle):
    xi = _xi(v, direction, angle)
    T = se3_exp(xi)
    torch.testing.assert_close(T, _expm(xi), rtol=0, atol=1e-13)
    torch.testing.assert_close(se3_log(T), xi, rtol=0, atol=1e-9)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, 1e-3, 0.0999, 0.1001, 1.0, 3.0, math.pi - 1e-6])
def test_exp_series_boundaries(angle, dtype):
    xi64 = _xi([0.3, -0.7, 1.1], [0.2, 0.9, -0.4], angle)
    ref = _expm(xi64)
    atol = 4e-15 if dtype == F64 else 4e-7
    torch.testing.assert_close(se3_exp(xi64.to(dtype)).double(), ref, rtol=0, atol=atol)
    back = se3_log(ref.to(dtype)).double()
    torch.testing.assert_close(back, xi64, rtol=0, atol=2e-15 if dtype == F64 else 3e-7)


def test_log_near_pi():
    for angle in (math.pi, math.pi - 1e-8, math.pi - 1e-4):
        xi = _xi([0.5, 0.25, -1.0], [1.0, -2.0, 0.5], angle)
        T = se3_exp(xi)
        xi2 = se3_log(T)
        assert abs(xi2[3:].norm().item() - angle) < 1e-9
        torch.testing.assert_close(se3_exp(xi2), T, rtol=0, atol=1e-12)


def test_exp_log_random_transforms(device):
    g = torch.Generator().manual_seed(2)
    R = random_rotations(200, generator=g, dtype=F64, device=device)
    assert rotation_angle(R).max() > 2.9  # covers the neighbourhood of pi
    T = make_T(R, torch.randn(200, 3, generator=g, dtype=F64).to(device))
    torch.testing.assert_close(se3_exp(se3_log(T)), T, rtol=0, atol=1e-12)


def test_exp_translation_first_and_left_perturbation():
    v = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    T = se3_exp(torch.cat([v, torch.zeros(3, dtype=F64)]))
    assert torch.equal(T, make_T(torch.eye(3, dtype=F64), v))
    # first order: transform_points(exp(xi) @ T, X) = X_c + v + w x X_c
    g = torch.Generator().manual_seed(3)
    T0 = make_T(random_rotations(1, generator=g, dtype=F64)[0], torch.tensor([0.0, 0.0, 1.0], dtype=F64))
    X = torch.randn(5, 3, generator=g, dtype=F64)
    Xc = transform_points(T0, X)
    xi = torch.randn(6, generator=g, dtype=F64) * 1e-7
    X1 = transform_points(se3_exp(xi) @ T0, X)
    torch.testing.assert_close(X1, Xc + xi[:3] + torch.linalg.cross(xi[3:].expand(5, 3), Xc, dim=-1), rtol=0,
                               atol=1e-13)


def test_transform_points_batch(device, dtype, tols):
    g = torch.Generator().manual_seed(4)
    T = make_T(random_rotations(4, generator=g, dtype=dtype), torch.randn(4, 3, generator=g, dtype=dtype)).to(device)
    X = torch.randn(4, 9, 3, generator=g, dtype=dtype).to(device)
    Xh = torch.cat([X, torch.ones(4, 9, 1, dtype=dtype, device=device)], -1)
    torch.testing.assert_close(transform_points(T, X), (Xh @ T.transpose(1, 2))[..., :3], **tols)
    # one transform, many point sets
    assert transform_points(T[0], X).shape == (4, 9, 3)


def test_gradcheck():
    g = torch.Generator().manual_seed(5)
    for xi in (
        torch.zeros(6, dtype=F64),
        torch.tensor([0.1, 0.2, 0.3, 1e-4, -2e-4, 3e-4], dtype=F64),
        torch.tensor([0.1, 0.2, 0.3, 0.05, 0.06, -0.04], dtype=F64),
        torch.randn(3, 6, generator=g, dtype=F64),
    ):
        assert torch.autograd.gradcheck(se3_exp, (xi.clone().requires_grad_(),))
    T = se3_exp(torch.randn(3, 6, generator=g, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(se3_log, (T,))
    assert torch.autograd.gradcheck(se3_inverse, (T,))
    X = torch.randn(3, 4, 3, generator=g, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(transform_points, (T, X))


def test_errors():
    with pytest.raises(ShapeError, match=r"se3_exp: xi must have shape \[\*, 6\], got \[2, 3\]"):
        se3_exp(torch.zeros(2, 3))
    with pytest.raises(ShapeError, match=r"se3_inverse: T must have shape \[\*, 4, 4\], got \[3, 4\]"):
        se3_inverse(torch.zeros(3, 4))
    with pytest.raises(ShapeError, match=r"transform_points: X must have shape \[\*, P, 3\].*got \[3\]"):
        transform_points(torch.eye(4), torch.zeros(3))
    with pytest.raises(ShapeError, match=r"make_T: t must have shape \[\*, 3\], got \[4\]"):
        make_T(torch.eye(3), torch.zeros(4))
