"""The training loss's ADD-S (``point_matching_error`` for symmetric objects) and the batched ``adi_m``: bop's
direction, and a symmetric pose whose symmetry has a translation offset costs nothing."""

from __future__ import annotations

import math

import pytest
import torch

from iterpose.metrics.batched import adi_m
from iterpose.train.losses import point_matching_error

# Box x in [0, 0.04], y in [-0.01, 0.01], z in [-0.005, 0.005] m; symmetry: 180 deg about the z axis through
# (0.02, 0, 0): x -> R_S x + t_S with R_S = diag(-1, -1, 1), t_S = (0.04, 0, 0) m.
BOX = torch.tensor([[x, y, z] for x in (0.0, 0.04) for y in (-0.01, 0.01) for z in (-0.005, 0.005)],
                   dtype=torch.float64)
R_S = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))
T_S = torch.tensor([0.04, 0.0, 0.0], dtype=torch.float64)


def _T(R: torch.Tensor, t) -> torch.Tensor:
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = R
    T[:3, 3] = torch.as_tensor(t, dtype=torch.float64)
    return T


def test_symmetric_pose_with_offset_costs_nothing():
    a = 0.7
    R_g = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]],
                       dtype=torch.float64)
    T_gt = _T(R_g, [0.01, -0.02, 0.6])[None]
    # the GT composed with the symmetry, point-wise: x -> R_g (R_S x + t_S) + t_g
    T_sym = _T(R_g @ R_S, R_g @ T_S + T_gt[0, :3, 3])[None]
    pts = BOX[None]
    assert point_matching_error(T_sym, T_gt, pts, torch.tensor([True])).item() == pytest.approx(0.0, abs=1e-12)
    assert adi_m(T_sym, T_gt, BOX).item() == pytest.approx(0.0, abs=1e-12)
    # ADD (not symmetric): each corner turns by 180 deg about the offset axis: 2 sqrt(0.02^2 + 0.01^2) m
    add = point_matching_error(T_sym, T_gt, pts, torch.tensor([False])).item()
    assert add == pytest.approx(2 * math.hypot(0.02, 0.01), rel=1e-12)


def test_adds_direction_gt_to_estimate():
    """Points x = 0, 1, 10 mm; GT = estimate + 9 mm in x: (1 + 0 + 9)/3 mm GT -> estimate, (9 + 8 + 0)/3 reversed."""
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.001, 0.0, 0.0], [0.010, 0.0, 0.0]], dtype=torch.float64)
    I3 = torch.eye(3, dtype=torch.float64)
    T_e, T_g = _T(I3, [0.0, 0.0, 0.5])[None], _T(I3, [0.009, 0.0, 0.5])[None]
    sym = torch.tensor([True])
    assert point_matching_error(T_e, T_g, pts[None], sym).item() == pytest.approx(0.010 / 3, abs=1e-15)
    assert point_matching_error(T_g, T_e, pts[None], sym).item() == pytest.approx(0.017 / 3, abs=1e-15)
    # a batch mixing symmetric and not: each row keeps its own error
    both = point_matching_error(torch.cat([T_e, T_e]), torch.cat([T_g, T_g]), pts[None].expand(2, 3, 3),
                                torch.tensor([True, False]))
    torch.testing.assert_close(both, torch.tensor([0.010 / 3, 0.009], dtype=torch.float64), rtol=0, atol=1e-15)
