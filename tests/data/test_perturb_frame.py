"""The DeepIM perturbation acts in the camera frame: R' = R_delta R and t' = t + dt, checked on the poses directly.

The same generator seed gives the same draws whatever the input poses (the rejection test looks only at the drawn
angles), so perturbing two sets of poses that differ only in their rotations separates the two conventions:
in the camera frame ``R'_1 R_1^T = R'_2 R_2^T`` (= R_delta) and ``t' - t`` does not depend on R; in the object
frame (R' = R R_delta) it would be ``R_1^T R'_1 = R_2^T R'_2`` instead.
"""

from __future__ import annotations

import torch

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.geometry import random_rotations, rotation_angle

N = 64


def _poses(seed: int) -> torch.Tensor:
    T = torch.eye(4, dtype=torch.float64).repeat(N, 1, 1)
    T[:, :3, :3] = random_rotations(N, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    T[:, :3, 3] = torch.tensor([0.02, -0.01, 0.8], dtype=torch.float64)
    return T


def test_rotation_is_perturbed_in_the_camera_frame():
    T1, T2 = _poses(0), _poses(1)
    cfg = PerturbConfig()
    out1 = perturb_poses(T1, cfg, torch.Generator().manual_seed(5))
    out2 = perturb_poses(T2, cfg, torch.Generator().manual_seed(5))
    R1, R2, P1, P2 = T1[:, :3, :3], T2[:, :3, :3], out1[:, :3, :3], out2[:, :3, :3]
    delta_cam1 = P1 @ R1.transpose(1, 2)
    delta_cam2 = P2 @ R2.transpose(1, 2)
    torch.testing.assert_close(delta_cam1, delta_cam2, rtol=0, atol=1e-12)
    # the object-frame reading differs (the rotations are random, the deltas ~20 deg)
    delta_obj1 = R1.transpose(1, 2) @ P1
    delta_obj2 = R2.transpose(1, 2) @ P2
    assert float((delta_obj1 - delta_obj2).abs().amax(dim=(1, 2)).min()) > 1e-3
    # R_delta is a rotation within the 45 deg bound, not the identity
    angle = torch.rad2deg(rotation_angle(delta_cam1))
    assert float(angle.max()) <= 45.0 + 1e-9 and float(angle.min()) > 0.1
    torch.testing.assert_close(delta_cam1 @ delta_cam1.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(N, 3, 3),
                               rtol=0, atol=1e-12)


def test_translation_noise_is_in_the_camera_frame():
    """dt does not depend on the rotation, and its spread is (1, 1, 5) cm along the camera's x, y, z: with the
    noise rotated into the object frame (R dt) the z spread would leak into x and y for random rotations."""
    T1, T2 = _poses(0), _poses(1)
    out1 = perturb_poses(T1, PerturbConfig(), torch.Generator().manual_seed(9))
    out2 = perturb_poses(T2, PerturbConfig(), torch.Generator().manual_seed(9))
    dt1 = out1[:, :3, 3] - T1[:, :3, 3]
    dt2 = out2[:, :3, 3] - T2[:, :3, 3]
    torch.testing.assert_close(dt1, dt2, rtol=0, atol=1e-15)
    big = perturb_poses(_poses(2).repeat(40, 1, 1), PerturbConfig(), torch.Generator().manual_seed(3))
    dt = big[:, :3, 3] - _poses(2).repeat(40, 1, 1)[:, :3, 3]
    std = dt.std(dim=0)
    assert float(std[0]) < 0.013 and float(std[1]) < 0.013 and 0.04 < float(std[2]) < 0.06

