"""Projection against cv2.projectPoints; Jacobians against finite differences and autograd through se3_exp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from iterpose.errors import ShapeError
from iterpose.geometry import (
    depth_jacobian_se3,
    make_T,
    project_points,
    projection_jacobian_se3,
    random_rotations,
    se3_exp,
    transform_points,
)

F64 = torch.float64
K_LMO = [[572.4114, 0.0, 325.2611], [0.0, 573.57043, 242.04899], [0.0, 0.0, 1.0]]


def _points(n, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=F64) * 0.05
    X[:, 2] += 0.8  # in front of the camera, asymmetric spread
    return X.to(dtype)


def test_project_known_and_vs_opencv(device, dtype, tols):
    K = torch.tensor(K_LMO, dtype=dtype, device=device)
    X = _points(20, 0, dtype).to(device)
    uv = project_points(K, X)
    assert uv.shape == (20, 2) and uv.dtype == dtype
    ref, _ = cv2.projectPoints(X.double().cpu().numpy(), np.zeros(3), np.zeros(3), np.array(K_LMO), None)
    np.testing.assert_allclose(uv.double().cpu().numpy(), ref[:, 0], rtol=0, atol=1e-9 if dtype == F64 else 2e-4)
    # principal point: a point on the optical axis lands on (cx, cy)
    on_axis = project_points(K, torch.tensor([[0.0, 0.0, 3.0]], dtype=dtype, device=device))
    torch.testing.assert_close(on_axis[0], K[:2, 2], **tols)


def test_project_broadcast():
    K = torch.tensor(K_LMO, dtype=F64)
    Kb = torch.stack([K, K * torch.tensor([[2.0], [2.0], [1.0]], dtype=F64)])  # second camera: 2x focal+centre
    X = torch.stack([_points(5, 1), _points(5, 2)])
    uv = project_points(Kb, X)
    torch.testing.assert_close(uv[1], 2 * project_points(K, X[1]), rtol=1e-12, atol=1e-12)
    assert project_points(K, X).shape == (2, 5, 2)  # one K for a batch


def _numeric(fn, X, h=1e-6):
    """Central differences of fn(transform_points(se3_exp(xi), X)) at xi = 0 -> [P, out, 6]."""
    cols = []
    for k in range(6):
        e = torch.zeros(6, dtype=F64)
        e[k] = h
        cols.append((fn(transform_points(se3_exp(e), X)) - fn(transform_points(se3_exp(-e), X))) / (2 * h))
    return torch.stack(cols, dim=-1)


def test_projection_jacobian_finite_differences():
    K = torch.tensor([[572.4, 0.0, 325.3], [0.0, 573.6, 242.0], [0.0, 0.0, 1.0]], dtype=F64)
    X = _points(12, 3)
    J = projection_jacobian_se3(K, X)
    assert J.shape == (12, 2, 6)
    Jn = _numeric(lambda Y: project_points(K, Y), X)
    torch.testing.assert_close(J, Jn, rtol=1e-7, atol=1e-5)  # pixels per metre ~ 700, FD error ~ h^2


def test_projection_jacobian_autograd_and_closed_form(device):
    K = torch.tensor(K_LMO, dtype=F64, device=device)
    X = _points(6, 4).to(device)

    def f(xi):
        return project_points(K, transform_points(se3_exp(xi), X))

    Ja = torch.autograd.functional.jacobian(f, torch.zeros(6, dtype=F64, device=device))  # [P, 2, 6]
    J = projection_jacobian_se3(K, X)
    torch.testing.assert_close(J, Ja, rtol=1e-12, atol=1e-9)
    fx, fy = K[0, 0], K[1, 1]
    x, y, z = X.unbind(-1)
    row_u = torch.stack([fx / z, 0 * z, -fx * x / z**2, -fx * x * y / z**2, fx * (1 + x**2 / z**2), -fx * y / z], -1)
    row_v = torch.stack([0 * z, fy / z, -fy * y / z**2, -fy * (1 + y**2 / z**2), fy * x * y / z**2, fy * x / z], -1)
    torch.testing.assert_close(J, torch.stack([row_u, row_v], -2), rtol=1e-12, atol=1e-9)


def test_projection_jacobian_skewed_K_batch():
    # general K (non-zero skew) and leading dims [2, P]: still the derivative of project_points
    K = torch.tensor([[[500.0, 3.0, 300.0], [0.0, 480.0, 200.0], [0.0, 0.0, 1.0]],
                      [[300.0, 0.0, 100.0], [0.0, 310.0, 90.0], [0.0, 0.0, 1.0]]], dtype=F64)
    X = torch.stack([_points(4, 5), _points(4, 6)])
    J = projection_jacobian_se3(K, X)
    assert J.shape == (2, 4, 2, 6)
    for b in range(2):
        Jn = _numeric(lambda Y, b=b: project_points(K[b], Y), X[b])
        torch.testing.assert_close(J[b], Jn, rtol=1e-7, atol=1e-5)


def test_depth_jacobian_finite_differences(device):
    g = torch.Generator().manual_seed(7)
    T = make_T(random_rotations(1, generator=g, dtype=F64)[0], torch.tensor([0.01, -0.02, 0.9], dtype=F64))
    X = transform_points(T, _points(8, 8) - torch.tensor([0.0, 0.0, 0.8], dtype=F64))
    Jd = depth_jacobian_se3(X.to(device)).cpu()
    assert Jd.shape == (8, 1, 6)
    Jn = _numeric(lambda Y: Y[..., 2:3], X)
    torch.testing.assert_close(Jd, Jn, rtol=1e-8, atol=1e-9)


def test_float32_jacobian_close_to_float64():
    K = torch.tensor(K_LMO, dtype=F64)
    X = _points(10, 9)
    J64 = projection_jacobian_se3(K, X)
    J32 = projection_jacobian_se3(K.float(), X.float())
    torch.testing.assert_close(J32.double(), J64, rtol=1e-5, atol=1e-3)


def test_errors():
    K = torch.tensor(K_LMO)
    with pytest.raises(ShapeError, match=r"project_points: X_cam must have shape \[\*, P, 3\].*got \[3\]"):
        project_points(K, torch.zeros(3))
    with pytest.raises(ShapeError, match=r"projection_jacobian_se3: K must have shape \[\*, 3, 3\], got \[3, 4\]"):
        projection_jacobian_se3(torch.zeros(3, 4), torch.zeros(2, 3))
    with pytest.raises(ShapeError, match=r"depth_jacobian_se3: X_cam must have shape \[\*, P, 3\], got \[2, 2\]"):
        depth_jacobian_se3(torch.zeros(2, 2))
