"""The shared LM machinery on a toy problem: a pose from 2D projections of known 3D points."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.geometry import project_points, projection_jacobian_se3, rotation_angle, se3_exp
from iterpose.refiners.lm import LMSettings, apply_step, damped_step, lm_accept, step_too_large

K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _problem(n_obj: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    X_obj = (torch.rand(n_obj, 12, 3, generator=g, dtype=torch.float64) - 0.5) * 0.2
    xi_gt = torch.cat([torch.randn(n_obj, 2, generator=g, dtype=torch.float64) * 0.05,
                       0.8 + torch.rand(n_obj, 1, generator=g, dtype=torch.float64) * 0.4,
                       torch.randn(n_obj, 3, generator=g, dtype=torch.float64) * 0.5], dim=1)
    T_gt = se3_exp(xi_gt)
    uv = project_points(K, X_obj @ T_gt[:, :3, :3].transpose(1, 2) + T_gt[:, None, :3, 3])
    T0 = se3_exp(torch.cat([torch.randn(n_obj, 3, generator=g, dtype=torch.float64) * 0.02,
                            torch.randn(n_obj, 3, generator=g, dtype=torch.float64) * 0.1], 1)) @ T_gt
    return X_obj, uv, T_gt, T0


def _cost_system(T, X_obj, uv):
    Xc = X_obj @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
    r = project_points(K, Xc) - uv  # [N, P, 2]
    J = projection_jacobian_se3(K, Xc)  # [N, P, 2, 6]
    J = J.reshape(J.shape[0], -1, 6)
    r = r.reshape(r.shape[0], -1)
    return 0.5 * (r * r).sum(1), J.transpose(1, 2) @ J, (J * r[..., None]).sum(1)


def test_lm_fits_pose_to_projections_and_matches_pnp():
    X_obj, uv, T_gt, T = _problem(3, seed=0)
    s = LMSettings()
    lam = torch.full((3,), s.lambda_init, dtype=torch.float64)
    cost, H, g = _cost_system(T, X_obj, uv)
    cost0 = cost.clone()
    for _ in range(30):
        cand = apply_step(T, damped_step(H, g, lam, s.eps))
        c_new, H_new, g_new = _cost_system(cand, X_obj, uv)
        acc, lam = lm_accept(c_new, cost, lam, s)
        T = torch.where(acc[:, None, None], cand, T)
        cost = torch.where(acc, c_new, cost)
        H = torch.where(acc[:, None, None], H_new, H)
        g = torch.where(acc[:, None], g_new, g)
    assert bool((cost < 1e-12).all()) and bool((cost0 > 1.0).all())
    assert float((T[:, :3, 3] - T_gt[:, :3, 3]).norm(dim=1).max()) < 1e-7
    # an independent solver: OpenCV's iterative PnP from the same correspondences
    for k in range(3):
        ok, rvec, tvec = cv2.solvePnP(X_obj[k].numpy(), uv[k].numpy(), K.numpy(), None,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
        assert ok
        R_cv = torch.from_numpy(cv2.Rodrigues(rvec)[0])
        assert float(rotation_angle(R_cv @ T[k, :3, :3].T)) < 1e-6
        assert np.allclose(tvec[:, 0], T[k, :3, 3].numpy(), atol=1e-6)


def test_damped_step_formula_and_gradient():
    g_ = torch.Generator().manual_seed(1)
    A = torch.randn(2, 6, 6, generator=g_, dtype=torch.float64)
    H = A @ A.transpose(1, 2) + torch.eye(6, dtype=torch.float64)
    g = torch.randn(2, 6, generator=g_, dtype=torch.float64)
    lam = torch.tensor([0.1, 10.0], dtype=torch.float64)
    xi = damped_step(H, g, lam, eps=1e-3)
    for k in range(2):
        M = H[k] + lam[k] * torch.diag(torch.diagonal(H[k])) + 1e-3 * torch.eye(6, dtype=torch.float64)
        torch.testing.assert_close(xi[k], -torch.linalg.inv(M) @ g[k])
    Hr = H.clone().requires_grad_(True)
    gr = g.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda h, v: damped_step((h + h.transpose(1, 2)) / 2, v, lam), (Hr, gr))


def test_lm_accept_adapts_damping():
    s = LMSettings(lambda_init=1.0, lambda_up=4.0, lambda_down=3.0)
    acc, lam = lm_accept(torch.tensor([1.0, 3.0, float("nan"), 1.0]), torch.tensor([2.0, 2.0, 2.0, 2.0]),
                         torch.ones(4), s, allowed=torch.tensor([True, True, True, False]))
    assert acc.tolist() == [True, False, False, False]
    torch.testing.assert_close(lam, torch.tensor([1 / 3, 4.0, 4.0, 4.0]))


def test_step_limits_and_settings_validation():
    s = LMSettings(max_step_rot_rad=0.3, max_step_trans_rel=0.25)
    xi = torch.tensor([[0.0, 0, 0, 0.31, 0, 0], [0.03, 0, 0, 0, 0, 0], [0.0, 0, 0.01, 0.1, 0, 0],
                       [float("nan"), 0, 0, 0, 0, 0]])
    assert step_too_large(xi, torch.full((4,), 0.1), s).tolist() == [True, True, False, True]
    with pytest.raises(InvalidInputError, match="lambda_up > 1"):
        LMSettings(lambda_up=0.5)
    with pytest.raises(ShapeError, match="H must be"):
        damped_step(torch.zeros(2, 5, 5), torch.zeros(2, 5), 1.0)
