"""Input checks shared by the render modules (private).

Every check raises a typed :mod:`iterpose.errors` exception naming the function, the argument, what was expected
and what was received. Kept private and self-contained so that ``iterpose.render`` depends only on torch, numpy,
numba, :mod:`iterpose.errors` and :mod:`iterpose.mesh`.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from iterpose.errors import InvalidInputError, PoseError, ShapeError
from iterpose.geometry.camera import validate_K

__all__ = [
    "Backend",
    "GUARD_BAND_PX",
    "check_backend",
    "check_size",
    "check_vertices",
    "check_faces",
    "check_K",
    "check_crop",
    "check_T_co",
]

Backend = Literal["auto", "numba", "torch"]

# Projected vertices must lie within +-GUARD_BAND_PX pixels of the image origin; triangles with a vertex outside
# are not drawn. It keeps the fixed-point edge functions exact in int64 (see raster.py).
GUARD_BAND_PX = 1 << 18


def check_backend(backend: str, fn: str) -> str:
    """Return ``backend`` if it is one of ``"auto" | "numba" | "torch"``, else raise InvalidInputError."""
    allowed = get_args(Backend)
    if backend not in allowed:
        raise InvalidInputError(f"{fn}: backend={backend!r} is not one of {allowed}; pick one of those.")
    return backend


def check_size(height: int, width: int, fn: str) -> tuple[int, int]:
    """Check that the full image size is two positive ints; return them as ``(height, width)``."""
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0 or v > GUARD_BAND_PX:
            raise InvalidInputError(f"{fn}: {name} must be a positive int <= {GUARD_BAND_PX}, got {v!r}.")
    return int(height), int(width)


def check_vertices(vertices_cam: torch.Tensor, fn: str, name: str = "vertices_cam") -> torch.Tensor:
    """Return ``vertices_cam`` as ``[B, V, 3]`` (a ``[V, 3]`` input gets B = 1 as a view)."""
    if not isinstance(vertices_cam, torch.Tensor):
        raise InvalidInputError(f"{fn}: {name} must be a torch.Tensor, got {type(vertices_cam).__name__}.")
    if vertices_cam.dim() == 2:
        vertices_cam = vertices_cam.unsqueeze(0)
    if vertices_cam.dim() != 3 or vertices_cam.shape[-1] != 3:
        raise ShapeError(f"{fn}: {name} must be [B, V, 3] or [V, 3] (metres, camera frame), "
                         f"got {list(vertices_cam.shape)}.")
    if not vertices_cam.dtype.is_floating_point:
        raise InvalidInputError(f"{fn}: {name} must be a float tensor, got {vertices_cam.dtype}.")
    return vertices_cam


def check_faces(faces: torch.Tensor, num_vertices: int, fn: str) -> torch.Tensor:
    """Check ``faces [F, 3]`` integer indices in ``[0, num_vertices)``; return it as int64."""
    if not isinstance(faces, torch.Tensor):
        raise InvalidInputError(f"{fn}: faces must be a torch.Tensor, got {type(faces).__name__}.")
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise ShapeError(f"{fn}: faces must be [F, 3] vertex indices, got {list(faces.shape)}.")
    if faces.dtype.is_floating_point or faces.dtype == torch.bool:
        raise InvalidInputError(f"{fn}: faces must be an integer tensor (int64), got {faces.dtype}.")
    faces = faces.long()
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= num_vertices):
        raise InvalidInputError(f"{fn}: faces index vertices in [{int(faces.min())}, {int(faces.max())}] but "
                                f"there are only {num_vertices} vertices; indices must be in [0, V).")
    if faces.shape[0] >= (1 << 31) - 1:
        raise InvalidInputError(f"{fn}: at most 2**31 - 2 faces are supported, got {faces.shape[0]}.")
    return faces


def check_K(K: torch.Tensor, batch: int | None, fn: str, name: str = "K") -> torch.Tensor:
    """Check a pinhole ``K`` (``[B, 3, 3]`` or ``[3, 3]``) and return it as ``[B, 3, 3]``.

    ``batch`` is the expected B (a ``[3, 3]`` or ``[1, 3, 3]`` K is expanded to it), or None for any B.
    Values are checked by :func:`iterpose.geometry.camera.validate_K` (skew allowed). Raises ShapeError /
    CameraError.
    """
    if not isinstance(K, torch.Tensor):
        raise InvalidInputError(f"{fn}: {name} must be a torch.Tensor, got {type(K).__name__}.")
    if K.dim() == 2:
        K = K.unsqueeze(0)
    if K.dim() != 3 or tuple(K.shape[1:]) != (3, 3):
        raise ShapeError(f"{fn}: {name} must be [B, 3, 3] or [3, 3] (pixels), got {list(K.shape)}.")
    if batch is not None and K.shape[0] != batch:
        if K.shape[0] == 1:
            K = K.expand(batch, 3, 3)
        else:
            raise ShapeError(f"{fn}: {name} has batch {K.shape[0]} but {batch} was expected, got {list(K.shape)}.")
    validate_K(K, name, allow_skew=True, caller=fn)
    return K


def check_crop(crop: torch.Tensor | None, batch: int, height: int, width: int, fn: str
               ) -> tuple[torch.Tensor, int, int]:
    """Return ``(offsets [B, 2] int64 (x0, y0) on CPU, h, w)`` for ``crop [B, 4] (x0, y0, w, h)`` or None.

    Windows may extend past the image (they are just pixel windows of the same camera); all share ``w, h``.
    """
    if crop is None:
        return torch.zeros(batch, 2, dtype=torch.int64), height, width
    if not isinstance(crop, torch.Tensor):
        crop = torch.as_tensor(crop)
    if crop.shape == (4,):
        crop = crop.unsqueeze(0).expand(batch, 4)
    if crop.dim() != 2 or crop.shape[1] != 4 or crop.shape[0] != batch:
        raise ShapeError(f"{fn}: crop must be [B, 4] (x0, y0, w, h) with B = {batch}, got {list(crop.shape)}.")
    if crop.dtype.is_floating_point:
        if not bool((crop == crop.round()).all()):
            raise InvalidInputError(f"{fn}: crop must hold integer pixel values (x0, y0, w, h), got {crop.tolist()}.")
    crop = crop.detach().to("cpu", torch.int64)
    w, h = int(crop[0, 2]), int(crop[0, 3])
    if bool((crop[:, 2] != w).any()) or bool((crop[:, 3] != h).any()):
        raise InvalidInputError(f"{fn}: all crops in a batch must share w, h; got w={crop[:, 2].tolist()}, "
                                f"h={crop[:, 3].tolist()}.")
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"{fn}: crop w, h must be positive, got w={w}, h={h}.")
    lim = GUARD_BAND_PX // 2
    if bool((crop[:, :2].abs() > lim).any()) or w > lim or h > lim:
        raise InvalidInputError(f"{fn}: crop values must be within +-{lim} pixels, got {crop.tolist()}.")
    return crop[:, :2].clone(), h, w


def check_T_co(T_co: torch.Tensor, fn: str, name: str = "T_co") -> torch.Tensor:
    """Check object-to-camera poses ``[N, 4, 4]`` (or ``[4, 4]``): finite, last row (0, 0, 0, 1) and the object
    origin in front of the camera (t_z > 0). Returns ``[N, 4, 4]``. Raises ShapeError / PoseError naming the
    instance index."""
    if not isinstance(T_co, torch.Tensor):
        raise InvalidInputError(f"{fn}: {name} must be a torch.Tensor, got {type(T_co).__name__}.")
    if T_co.dim() == 2:
        T_co = T_co.unsqueeze(0)
    if T_co.dim() != 3 or tuple(T_co.shape[1:]) != (4, 4):
        raise ShapeError(f"{fn}: {name} must be [N, 4, 4] (object-to-camera, metres), got {list(T_co.shape)}.")
    Td = T_co.detach()
    finite = torch.isfinite(Td).flatten(1).all(1)
    if not bool(finite.all()):
        n = int((~finite).nonzero()[0, 0])
        raise PoseError(f"{fn}: {name}[{n}] (instance {n}) contains NaN or inf; pass finite poses.")
    last = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=Td.dtype, device=Td.device)
    badrow = (Td[:, 3] != last).any(1)
    if bool(badrow.any()):
        n = int(badrow.nonzero()[0, 0])
        raise PoseError(f"{fn}: {name}[{n}] (instance {n}) has last row {Td[n, 3].tolist()}, "
                        f"expected [0, 0, 0, 1].")
    behind = Td[:, 2, 3] <= 0
    if bool(behind.any()):
        n = int(behind.nonzero()[0, 0])
        raise PoseError(f"{fn}: {name}[{n}] (instance {n}) puts the object origin behind the camera "
                        f"(t_z = {float(Td[n, 2, 3]):.4g} m <= 0); the camera looks along +z, t is in metres.")
    return T_co
