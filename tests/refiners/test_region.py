"""Region term: signed distance, colour posteriors, and the direction of its Gauss-Newton step."""

from __future__ import annotations

import torch

from iterpose.refiners.lm import damped_step
from iterpose.refiners.proxy_mesh import backproject
from iterpose.refiners.rgb_lm.region import color_histograms, posteriors, region_energy, region_terms, signed_distance


def _disc(S: int, cu: float, cv: float, r: float) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(S, dtype=torch.float64), torch.arange(S, dtype=torch.float64), indexing="ij")
    return ((u - cu) ** 2 + (v - cv) ** 2) <= r * r


def test_signed_distance_of_a_rectangle():
    m = torch.zeros(1, 12, 16, dtype=torch.bool)
    m[0, 3:9, 4:12] = True  # rows 3..8, cols 4..11
    sd = signed_distance(m)
    phi = sd.phi[0]
    assert float(phi[3, 6]) == 0.5 and float(phi[2, 6]) == -0.5  # contour pixel, and the pixel above it
    assert float(phi[5, 6]) == 2.5 and abs(float(phi[0, 6]) + 2.5) < 1e-5
    assert bool((phi[m[0]] > 0).all()) and bool((phi[~m[0]] < 0).all())
    # nearest contour pixel of (0, 6) is (3, 6); of (5, 1) is (5, 4)
    assert int(sd.nearest[0, 0, 6]) == 3 * 16 + 6 and int(sd.nearest[0, 5, 1]) == 5 * 16 + 4
    assert float(sd.grad_v[0, 1, 6]) == 1.0 and float(sd.grad_u[0, 5, 1]) == 1.0  # points inwards
    empty = signed_distance(torch.zeros(1, 5, 5, dtype=torch.bool))
    assert not bool(empty.has_contour[0]) and bool((empty.phi < 0).all())


def test_posteriors_separate_two_colours():
    S = 20
    fg = _disc(S, 10, 10, 5)[None]
    img = torch.where(fg[:, None], torch.tensor([0.9, 0.1, 0.1])[None, :, None, None],
                      torch.tensor([0.1, 0.2, 0.8])[None, :, None, None]).float()
    hf, hb = color_histograms(img, fg, ~fg, bins=8)
    Pf = posteriors(img, hf, hb, bins=8)
    assert float(Pf[fg].min()) > 0.99 and float(Pf[~fg].max()) < 0.01


def test_region_step_moves_the_silhouette_towards_the_observed_object():
    S, f, z = 48, 100.0, 0.5
    K = torch.tensor([[[f, 0.0, 23.5], [0.0, f, 23.5], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    observed = _disc(S, 23.5, 23.5, 10)[None]
    rendered = _disc(S, 26.5, 22.5, 10)[None]  # 3 px right, 1 px up of the observed object
    Pf = torch.where(observed, 0.95, 0.05).to(torch.float64)
    X = backproject(torch.where(rendered, z, 0.0).to(torch.float64), K)
    valid = torch.ones(1, S, S, dtype=torch.bool)
    sd = signed_distance(rendered)
    terms = region_terms(Pf, sd, X, K, valid, band_px=8.0, slope=1.2)
    # a pure 2D problem: solve for the translation (x, y) only
    xi = damped_step(terms.H, terms.g, torch.tensor([1e-3], dtype=torch.float64))[0]
    H2 = terms.H[0, :2, :2]
    t2 = -torch.linalg.solve(H2, terms.g[0, :2])
    du, dv = (t2 * f / z).tolist()
    assert -6.0 < du < -1.0 and 0.3 < dv < 3.0, (du, dv, xi)
    # and the energy is lower at the observed position
    e_obs = region_energy(Pf, signed_distance(observed).phi, valid, 1.2)
    assert float(e_obs[0]) < float(terms.cost[0])
