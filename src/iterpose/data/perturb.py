"""Initial-pose perturbation: the DeepIM protocol by default.

DeepIM (Li et al., ECCV 2018) trains and tests refiners from ground-truth poses perturbed by
``R' = R_delta R`` with ``R_delta = Rz(c) Ry(b) Rx(a)``, ``a, b, c ~ N(0, 15°)`` (redrawn when the angle of
``R_delta`` exceeds 45°) and ``t' = t + (N(0, 1 cm), N(0, 1 cm), N(0, 5 cm))`` in the camera frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.geometry import euler_to_matrix, rotation_angle

__all__ = ["PerturbConfig", "perturb_poses"]


@dataclass(frozen=True)
class PerturbConfig:
    """Noise of :func:`perturb_poses`.

    Attributes:
        rot_std_deg: standard deviation of each Euler angle (x, y, z), degrees.
        trans_std_m: standard deviation of the camera-frame translation noise along (x, y, z), metres.
        max_rot_deg: draws whose total rotation angle exceeds this are redrawn, degrees.
    """

    rot_std_deg: float = 15.0
    trans_std_m: tuple[float, float, float] = (0.01, 0.01, 0.05)
    max_rot_deg: float = 45.0

    def __post_init__(self) -> None:
        t = self.trans_std_m
        if not (isinstance(t, (tuple, list)) and len(t) == 3 and all(isinstance(v, (int, float)) for v in t)):
            raise InvalidInputError(f"PerturbConfig.trans_std_m needs 3 numbers (x, y, z) in metres, got {t!r}")
        if not (self.rot_std_deg >= 0 and all(v >= 0 for v in t)):
            raise InvalidInputError(f"PerturbConfig: standard deviations must be >= 0, got {self}")
        if not self.max_rot_deg > 0:
            raise InvalidInputError(f"PerturbConfig.max_rot_deg must be > 0, got {self.max_rot_deg}")


#: Rounds of redrawing the rotations beyond ``max_rot_deg`` before giving up: with the defaults about 1 draw in 5
#: is redrawn, so 1000 rounds fail only for a ``max_rot_deg`` far below ``rot_std_deg`` (an error, reported).
_MAX_REDRAWS = 1000

def perturb_poses(
    T_co: torch.Tensor, config: PerturbConfig = PerturbConfig(), generator: torch.Generator | None = None
) -> torch.Tensor:
    """Perturb object-to-camera poses.

    Args:
        T_co: ``[N, 4, 4]`` poses (metres), any float dtype and device.
        config: the noise levels.
        generator: a CPU ``torch.Generator`` for reproducible draws (noise is drawn on the CPU, then moved).

    Returns:
        ``[N, 4, 4]`` new poses, same dtype and device; ``R' = R_delta R``, ``t' = t + dt``.
    """
    if T_co.ndim != 3 or T_co.shape[-2:] != (4, 4):
        raise ShapeError(f"perturb_poses: T_co must be [N, 4, 4], got {list(T_co.shape)}")
    n = T_co.shape[0]
    std = math.radians(config.rot_std_deg)
    limit = math.radians(config.max_rot_deg)
    angles = torch.randn(n, 3, generator=generator, dtype=torch.float64) * std
    for _ in range(_MAX_REDRAWS):  # rejection sampling; with the defaults about 1 draw in 5 is redrawn
        bad = rotation_angle(euler_to_matrix(angles)) > limit
        if not bool(bad.any()):
            break
        angles[bad] = torch.randn(int(bad.sum()), 3, generator=generator, dtype=torch.float64) * std
    else:
        raise InvalidInputError(
            f"perturb_poses: could not draw rotations within {config.max_rot_deg}° with std {config.rot_std_deg}°"
        )
    dt = torch.randn(n, 3, generator=generator, dtype=torch.float64) * torch.tensor(config.trans_std_m, dtype=torch.float64)
    R_delta = euler_to_matrix(angles).to(T_co)
    out = T_co.clone()
    out[:, :3, :3] = R_delta @ T_co[:, :3, :3]
    out[:, :3, 3] = T_co[:, :3, 3] + dt.to(T_co)
    return out
