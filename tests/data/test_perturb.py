"""DeepIM-protocol perturbation: statistics, the rejection bound, determinism and errors."""

from __future__ import annotations

import math

import pytest
import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.errors import InvalidInputError, ShapeError
from iterpose.geometry import random_rotations, rotation_angle


def _poses(n: int) -> torch.Tensor:
    T = torch.eye(4).repeat(n, 1, 1)
    T[:, :3, :3] = random_rotations(n, generator=torch.Generator().manual_seed(0))
    T[:, :3, 3] = torch.tensor([0.0, 0.0, 1.0])
    return T


def test_statistics_match_the_protocol():
    n = 4000
    T = _poses(n)
    out = perturb_poses(T, PerturbConfig(), torch.Generator().manual_seed(1))
    R_delta = out[:, :3, :3] @ T[:, :3, :3].transpose(1, 2)
    angle_deg = torch.rad2deg(rotation_angle(R_delta.double()))
    assert float(angle_deg.max()) <= 45.0 + 1e-3
    assert 18.0 < float(angle_deg.mean()) < 28.0  # ~N(0,15°) per axis, truncated at 45°
    dt = out[:, :3, 3] - T[:, :3, 3]
    std = dt.std(dim=0)
    assert torch.allclose(std, torch.tensor([0.01, 0.01, 0.05]), rtol=0.08)
    assert torch.allclose(out[:, 3], T[:, 3])  # bottom row untouched


def test_deterministic_and_does_not_modify_input():
    T = _poses(5)
    before = T.clone()
    a = perturb_poses(T, generator=torch.Generator().manual_seed(7))
    b = perturb_poses(T, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and torch.equal(T, before)


def test_zero_noise_is_identity():
    T = _poses(3)
    out = perturb_poses(T, PerturbConfig(rot_std_deg=0.0, trans_std_m=(0.0, 0.0, 0.0)))
    torch.testing.assert_close(out, T)


def test_small_bound_is_respected():
    T = _poses(200)
    out = perturb_poses(T, PerturbConfig(rot_std_deg=5.0, max_rot_deg=5.0), torch.Generator().manual_seed(2))
    angle = rotation_angle((out[:, :3, :3] @ T[:, :3, :3].transpose(1, 2)).double())
    assert float(angle.max()) <= math.radians(5.0) + 1e-5


def test_bad_input():
    with pytest.raises(ShapeError, match=r"T_co must be \[N, 4, 4\]"):
        perturb_poses(torch.eye(4))
    with pytest.raises(InvalidInputError, match="must be >= 0"):
        PerturbConfig(rot_std_deg=-1.0)
    with pytest.raises(InvalidInputError, match="needs 3 numbers"):
        PerturbConfig(trans_std_m=0.01)
    with pytest.raises(InvalidInputError, match="needs 3 numbers"):
        PerturbConfig(trans_std_m=(0.01, 0.01))
