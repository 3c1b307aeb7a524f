"""Photometric machinery: gradients, robust weights, gain/bias, and the Jacobian against finite differences."""

from __future__ import annotations

import pytest
import torch

from iterpose.errors import InvalidInputError
from iterpose.geometry import project_points, se3_exp
from iterpose.refiners.photometric import (
    erode,
    fit_gain_bias,
    image_gradients,
    photometric_terms,
    robust_rho_and_weight,
)
from iterpose.refiners.proxy_mesh import backproject


def test_gradients_of_a_ramp():
    v, u = torch.meshgrid(torch.arange(20.0), torch.arange(30.0), indexing="ij")
    img = torch.stack([0.3 * u - 0.1 * v, 0.2 * v, torch.zeros_like(u)])[None]
    blurred, gu, gv = image_gradients(img, blur_sigma=1.0)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    torch.testing.assert_close(gu[inner][0, 0], torch.full((12, 22), 0.3), atol=1e-5, rtol=0)
    torch.testing.assert_close(gv[inner][0, 0], torch.full((12, 22), -0.1), atol=1e-5, rtol=0)
    torch.testing.assert_close(gv[inner][0, 1], torch.full((12, 22), 0.2), atol=1e-5, rtol=0)
    torch.testing.assert_close(blurred[inner], img[inner], atol=1e-4, rtol=0)  # blur keeps a linear ramp


def test_robust_losses():
    x = torch.tensor([0.0, 0.5, 2.0, 10.0])
    rho, w = robust_rho_and_weight(x, "huber")
    torch.testing.assert_close(rho, torch.tensor([0.0, 0.125, 1.5, 9.5]))
    torch.testing.assert_close(w, torch.tensor([1.0, 1.0, 0.5, 0.1]))
    rho, w = robust_rho_and_weight(x, "cauchy")
    torch.testing.assert_close(w, 1 / (1 + x * x))
    _, w = robust_rho_and_weight(x, "tukey")
    assert float(w[3]) == 0.0 and float(w[0]) == 1.0
    with pytest.raises(InvalidInputError, match="not one of"):
        robust_rho_and_weight(x, "l1")


def test_gain_bias_recovers_affine_change():
    g = torch.Generator().manual_seed(0)
    f = torch.rand(2, 3, 8, 8, generator=g)
    a = torch.tensor([[0.7, 1.2, 0.9], [1.5, 0.5, 1.0]])
    b = torch.tensor([[0.1, -0.05, 0.0], [0.0, 0.2, -0.1]])
    obs = a[..., None, None] * f + b[..., None, None]
    ga, gb = fit_gain_bias(f, obs, torch.ones(2, 8, 8), ridge=0.0)
    torch.testing.assert_close(ga, a, atol=1e-4, rtol=0)
    torch.testing.assert_close(gb, b, atol=1e-4, rtol=0)


def test_erode():
    m = torch.zeros(1, 7, 7, dtype=torch.bool)
    m[0, 1:6, 1:6] = True
    e = erode(m, 1)
    assert int(e.sum()) == 9 and bool(e[0, 2:5, 2:5].all())


def test_photometric_gradient_matches_finite_differences():
    """Observed image = linear ramp in (u, v): its Sobel gradient is exact, so g must equal the numerical
    derivative of the l2 cost 0.5 mean sum_c (r / sigma)^2 w.r.t. the left twist."""
    S = 24
    K = torch.tensor([[[60.0, 0.0, 11.5], [0.0, 60.0, 11.5], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    depth = torch.full((1, S, S), 0.5, dtype=torch.float64)
    depth = depth + 0.01 * torch.linspace(0, 1, S, dtype=torch.float64)[None, :, None]
    X = backproject(depth, K)  # [1, S, S, 3]
    v, u = torch.meshgrid(torch.arange(S, dtype=torch.float64), torch.arange(S, dtype=torch.float64), indexing="ij")
    coef = torch.tensor([[0.02, -0.01, 0.3], [-0.015, 0.025, 0.4], [0.01, 0.01, 0.1]], dtype=torch.float64)

    def I_obs(uu, vv):
        return torch.stack([c[0] * uu + c[1] * vv + c[2] for c in coef])

    obs = I_obs(u, v)[None]
    _, gu, gv = image_gradients(obs, 0.0)
    albedo = torch.rand(1, 3, S, S, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    weight = torch.zeros(1, S, S, dtype=torch.float64)
    weight[0, 3:-3, 3:-3] = 1.0
    sigma = 0.1
    terms = photometric_terms(albedo, obs, gu, gv, X, K, weight, sigma, "l2", gain_bias=False)

    def cost(xi):
        T = se3_exp(xi)
        Xn = X.reshape(-1, 3) @ T[:3, :3].T + T[:3, 3]
        uv = project_points(K[0], Xn)
        r = albedo[0].reshape(3, -1) - I_obs(uv[:, 0], uv[:, 1])
        return (0.5 * (r / sigma) ** 2 * weight.reshape(1, -1)).sum() / weight.sum()

    xi0 = torch.zeros(6, dtype=torch.float64)
    torch.testing.assert_close(terms.cost[0], cost(xi0))
    num = torch.autograd.functional.jacobian(cost, xi0)
    torch.testing.assert_close(terms.g[0], num, rtol=1e-6, atol=1e-9)
