"""Correspondence-line term: the residuals and the Gauss-Newton step on 2D discs with known offsets."""

from __future__ import annotations

import torch

from iterpose.refiners.lm import damped_step
from iterpose.refiners.proxy_mesh import backproject
from iterpose.refiners.rgb_lm.contour_lines import contour_line_terms
from iterpose.refiners.rgb_lm.region import signed_distance

S, F, Z = 48, 100.0, 0.5


def _disc(cu: float, cv: float, r: float) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(S, dtype=torch.float64), torch.arange(S, dtype=torch.float64), indexing="ij")
    return (((u - cu) ** 2 + (v - cv) ** 2) <= r * r)[None]


def _terms(observed, rendered, valid=None, length=12):
    K = torch.tensor([[[F, 0.0, 23.5], [0.0, F, 23.5], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    Pf = torch.where(observed, 0.95, 0.05).to(torch.float64)
    X = backproject(torch.where(rendered, Z, 0.0).to(torch.float64), K)
    valid = torch.ones(1, S, S, dtype=torch.bool) if valid is None else valid
    return contour_line_terms(Pf, signed_distance(rendered), X, K, valid, length, 2.0)


def test_aligned_silhouette_has_zero_residuals():
    m = _disc(23.5, 23.5, 10)
    t = _terms(m, m)
    assert int(t.n_lines[0]) > 40
    assert float(t.cost[0]) < 0.02  # every line finds the transition at the boundary (|d| < 0.2 px)
    xi = damped_step(t.H, t.g, torch.tensor([1e-3], dtype=torch.float64))[0]
    # the step moves the disc by < 0.1 px and changes its 10 px radius by < 0.1 px (measured 0.07 px: the digital
    # contour biases d slightly)
    assert float(xi[:2].abs().max()) * F / Z < 0.1 and 10.0 * abs(float(xi[2])) / Z < 0.1, xi


def test_step_recovers_a_2d_shift():
    observed = _disc(23.5, 23.5, 10)
    rendered = _disc(26.5, 22.5, 10)  # 3 px right, 1 px up of the observed object
    t = _terms(observed, rendered)
    t2 = -torch.linalg.solve(t.H[0, :2, :2], t.g[0, :2])  # translation (x, y) only
    du, dv = (t2 * F / Z).tolist()
    # measured: du = -2.93, dv = 0.98 (Huber downweights the 3 px residuals but they agree)
    assert abs(du + 3.0) < 0.3 and abs(dv - 1.0) < 0.3, (du, dv)


def test_lines_through_invalid_pixels_are_dropped():
    observed = _disc(23.5, 23.5, 10)
    full = _terms(observed, observed)
    valid = torch.ones(1, S, S, dtype=torch.bool)
    valid[0, :, :24] = False  # left half occluded
    half = _terms(observed, observed, valid)
    assert 0 < int(half.n_lines[0]) < 0.6 * int(full.n_lines[0])


def test_no_transition_within_the_line_gives_no_line():
    observed = _disc(23.5, 23.5, 3)
    rendered = _disc(23.5, 23.5, 20)  # every line misses the small observed disc (offsets >= 17 px > L)
    t = _terms(observed, rendered, length=6)
    assert int(t.n_lines[0]) == 0 and float(t.cost[0]) == 0.0 and float(t.H.abs().max()) == 0.0
