"""Intrinsics ``K``: validation, crop, zoom (crop + resize), and a look-at camera pose.

Conventions:
    - ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels, OpenCV: the centre of pixel (row i, col j) is at
      ``(u, v) = (j, i)``, so pixel edges lie at half-integers and the image of width W spans ``u in [-0.5, W-0.5]``.
    - Boxes ``box_xywh [*, 4] = (x0, y0, w, h)`` in pixels: ``(x0, y0)`` is the (column, row) of the crop's top-left
      pixel and ``(w, h)`` its size in pixels; the crop covers ``u in [x0 - 0.5, x0 + w - 0.5]``. Non-integer
      boxes are allowed (continuous crops, e.g. for ``grid_sample``).
"""

from __future__ import annotations

import numpy as np
import torch

from iterpose.errors import CameraError, InvalidInputError, ShapeError
from iterpose.geometry._checks import check_tail, unit_eps
from iterpose.geometry.se3 import make_T

__all__ = ["validate_K", "crop_K", "zoom_K", "look_at_T_co", "bop_to_opencv_K", "BOP_PIXEL_CENTRE_OFFSET_PX",
           "principal_point_in_image"]

# |skew| / fx and |K[1, 0]| / fy above this are refused; the bottom row must match (0, 0, 1) to this.
_K_TOL = 1e-6


def _first_bad(mask: torch.Tensor) -> tuple[int, ...]:
    """Index (over the leading dims) of the first True in ``mask``."""
    if mask.ndim == 0:
        return ()
    return tuple(int(i) for i in torch.nonzero(mask)[0])


def validate_K(K: torch.Tensor, name: str = "K", *, allow_skew: bool = False, caller: str = "validate_K"
               ) -> torch.Tensor:
    """Check that ``K`` is a batch of valid pinhole intrinsics; return it unchanged.

    Args:
        K: ``[*, 3, 3]`` float tensor, pixels.
        name: the argument name to quote in error messages (e.g. ``"K_crop"``).
        allow_skew: accept any skew ``K[0, 1]`` (the rasteriser and the projection Jacobian handle it; the
            crop/zoom helpers assume zero skew).
        caller: the function name that starts each error message.

    Returns:
        ``K`` itself.

    Raises:
        ShapeError: not a float tensor of shape ``[*, 3, 3]``.
        CameraError: non-finite entries, ``fx <= 0`` or ``fy <= 0``, bottom row not ``(0, 0, 1)``, a non-zero
            ``K[1, 0]``, or (unless ``allow_skew``) a skew ``K[0, 1]`` that is not ~0 (``|s| > 1e-6 fx``). The
            message names ``caller``, ``name``, the
            batch index and the bad value.

    Example:
        >>> K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
        >>> validate_K(K) is K
        True
    """
    fn = caller
    if not isinstance(K, torch.Tensor):
        raise ShapeError(f"{fn}: {name} must be a torch.Tensor of shape [*, 3, 3], got {type(K).__name__}")
    if not K.is_floating_point():
        raise ShapeError(f"{fn}: {name} must be a floating-point tensor [*, 3, 3], got dtype {K.dtype}")
    check_tail(K, (3, 3), fn, name, "[*, 3, 3]")
    Kd = K.detach()
    hint = "expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels"

    def where(mask: torch.Tensor) -> str:
        idx = _first_bad(mask)
        return f"{name}[{', '.join(map(str, idx))}]" if idx else name

    bad = ~torch.isfinite(Kd).all(dim=-1).all(dim=-1)
    if bool(bad.any()):
        raise CameraError(f"{fn}: {where(bad)} has NaN or inf entries: {Kd[_first_bad(bad)].tolist()}; {hint}")
    fx, fy = Kd[..., 0, 0], Kd[..., 1, 1]
    for comp, val in (("fx", fx), ("fy", fy)):
        bad = val <= 0
        if bool(bad.any()):
            raise CameraError(
                f"{fn}: {where(bad)} has {comp} = {float(val[_first_bad(bad)])} <= 0; focal lengths must be "
                f"positive pixels ({hint})"
            )
    bottom = Kd[..., 2, :]
    ref = torch.tensor([0.0, 0.0, 1.0], dtype=Kd.dtype, device=Kd.device)
    bad = ((bottom - ref).abs() > _K_TOL).any(dim=-1)
    if bool(bad.any()):
        raise CameraError(
            f"{fn}: {where(bad)} has bottom row {bottom[_first_bad(bad)].tolist()}, must be (0, 0, 1); "
            f"divide K by K[2, 2] if it is a scaled matrix"
        )
    bad = Kd[..., 1, 0].abs() > _K_TOL * fy
    if bool(bad.any()):
        raise CameraError(f"{fn}: {where(bad)} has K[1, 0] = {float(Kd[..., 1, 0][_first_bad(bad)])}, must be 0")
    bad = Kd[..., 0, 1].abs() > _K_TOL * fx
    if not allow_skew and bool(bad.any()):
        raise CameraError(
            f"{fn}: {where(bad)} has skew K[0, 1] = {float(Kd[..., 0, 1][_first_bad(bad)])}; only zero-skew "
            f"cameras are supported (|skew| <= 1e-6 fx)"
        )
    return K


#: BOP's renderer puts the centre of pixel (row i, col j) at ``(j + 0.5, i + 0.5)`` for the same ``K``; OpenCV's
#: convention (iterpose's) puts it at ``(j, i)``. Measured on LM-O: BOP's ``bbox_obj`` / ``px_count_all`` are
#: reproduced exactly by our rasteriser with ``cx, cy`` shifted by minus this.
BOP_PIXEL_CENTRE_OFFSET_PX = 0.5


def bop_to_opencv_K(K):
    """The intrinsics that make iterpose (OpenCV pixel centres) project like BOP's renderer does with ``K``.

    ``cx' = cx - 0.5``, ``cy' = cy - 0.5`` (:data:`BOP_PIXEL_CENTRE_OFFSET_PX`); everything else unchanged. Use it
    wherever a result is compared with BOP-rendered masks, boxes or depth, or an image of a BOP dataset is refined
    (``iterpose refine``'s ``--bop-pixel-shift``). The pose is not changed, only how it projects.

    Args:
        K: ``[*, 3, 3]`` intrinsics (pixels), a torch tensor or a NumPy array.

    Returns:
        A new tensor / array of the same type, shape, dtype and device (the input is not changed).

    Example:
        >>> bop_to_opencv_K(torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]))[:2, 2]
        tensor([319.5000, 239.5000])
    """
    K_shifted = K.clone() if isinstance(K, torch.Tensor) else np.array(K, copy=True)
    K_shifted[..., 0, 2] -= BOP_PIXEL_CENTRE_OFFSET_PX
    K_shifted[..., 1, 2] -= BOP_PIXEL_CENTRE_OFFSET_PX
    return K_shifted


def principal_point_in_image(K, width: int, height: int):
    """Whether the principal point ``(cx, cy)`` of ``K`` lies inside a ``width x height`` image, i.e. strictly
    inside the span the pixels cover, ``u in (-0.5, width - 0.5)``, ``v in (-0.5, height - 0.5)`` (OpenCV pixel
    centres). A K that fails it belongs to another image size (a wrong camera or a resized image).

    Args:
        K: ``[*, 3, 3]`` intrinsics (pixels), torch tensor or NumPy array.
        width, height: image size in pixels.

    Returns:
        ``[*]`` bool, a tensor or an array like ``K`` (a NumPy bool for a single ``[3, 3]`` array).

    Example:
        >>> K = torch.tensor([[500.0, 0.0, 319.5], [0.0, 500.0, 239.5], [0.0, 0.0, 1.0]])
        >>> bool(principal_point_in_image(K, 640, 480)), bool(principal_point_in_image(K, 320, 240))
        (True, False)
    """
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    half = BOP_PIXEL_CENTRE_OFFSET_PX  # half a pixel: the image's edge beyond the outermost pixel centres
    return (cx > -half) & (cx < width - half) & (cy > -half) & (cy < height - half)


def _check_box(box_xywh: torch.Tensor, fn: str) -> None:
    check_tail(box_xywh, (4,), fn, "box_xywh", "[*, 4]")


def crop_K(K: torch.Tensor, box_xywh: torch.Tensor) -> torch.Tensor:
    """Intrinsics of a crop: the crop's top-left pixel ``(x0, y0)`` becomes pixel ``(0, 0)``.

    ``cx' = cx - x0``, ``cy' = cy - y0``; focal lengths and skew unchanged.

    Args:
        K: ``[*, 3, 3]`` intrinsics of the full image (pixels).
        box_xywh: ``[*, 4]`` crop boxes ``(x0, y0, w, h)`` (only ``x0, y0`` matter); leading dims broadcast.

    Returns:
        ``K_crop [*, 3, 3]``, dtype/device of ``K``.

    Example:
        >>> K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
        >>> crop_K(K, torch.tensor([100.0, 50.0, 64.0, 64.0]))[:2, 2]
        tensor([220., 190.])
    """
    check_tail(K, (3, 3), "crop_K", "K", "[*, 3, 3]")
    _check_box(box_xywh, "crop_K")
    box = box_xywh.to(K)
    batch = torch.broadcast_shapes(K.shape[:-2], box.shape[:-1])
    out = K.expand(*batch, 3, 3).clone()
    box = box.expand(*batch, 4)
    out[..., 0, 2] = out[..., 0, 2] - box[..., 0]
    out[..., 1, 2] = out[..., 1, 2] - box[..., 1]
    return out


def zoom_K(K: torch.Tensor, box_xywh: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Intrinsics of a crop resized to ``(out_h, out_w)`` (what ``cv2.resize`` / ``interpolate(align_corners=False)``
    of ``image[y0:y0+h, x0:x0+w]`` shows).

    With ``sx = out_w / w`` and ``sy = out_h / h``, pixel edges at -0.5 map as ``u' + 0.5 = sx (u - x0 + 0.5)``, so
    ``fx' = sx fx``, ``s' = sx s``, ``cx' = sx (cx - x0) + 0.5 (sx - 1)``, ``fy' = sy fy``,
    ``cy' = sy (cy - y0) + 0.5 (sy - 1)``.

    Args:
        K: ``[*, 3, 3]`` intrinsics of the full image (pixels).
        box_xywh: ``[*, 4]`` crop boxes ``(x0, y0, w, h)`` in full-image pixels, ``w, h > 0``; leading dims
            broadcast with ``K``'s.
        out_hw: ``(out_h, out_w)`` size of the resized crop in pixels.

    Returns:
        ``K_zoom [*, 3, 3]``, dtype/device of ``K``; differentiable w.r.t. ``K`` and ``box_xywh``.

    Raises:
        InvalidInputError: ``out_hw`` not two positive ints, or a box with ``w <= 0`` or ``h <= 0``.

    Example:
        >>> K = torch.tensor([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
        >>> zoom_K(K, torch.tensor([300.0, 220.0, 40.0, 40.0]), (80, 80))  # 2x zoom around (320, 240)
        tensor([[1000.0000,    0.0000,   40.5000],
                [   0.0000, 1000.0000,   40.5000],
                [   0.0000,    0.0000,    1.0000]])
    """
    fn = "zoom_K"
    check_tail(K, (3, 3), fn, "K", "[*, 3, 3]")
    _check_box(box_xywh, fn)
    if (
        not isinstance(out_hw, (tuple, list))
        or len(out_hw) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in out_hw)
    ):
        raise InvalidInputError(f"{fn}: out_hw must be (out_h, out_w), two positive ints, got {out_hw!r}")
    box = box_xywh.to(K)
    bad = (box[..., 2] <= 0) | (box[..., 3] <= 0)
    if bool(bad.any()):
        idx = _first_bad(bad)
        label = f"box_xywh[{', '.join(map(str, idx))}]" if idx else "box_xywh"
        raise InvalidInputError(
            f"{fn}: {label} has width/height {box[idx][2:].tolist()}; both must be > 0 pixels"
        )
    out_h, out_w = out_hw
    batch = torch.broadcast_shapes(K.shape[:-2], box.shape[:-1])
    K = K.expand(*batch, 3, 3)
    box = box.expand(*batch, 4)
    sx = out_w / box[..., 2]
    sy = out_h / box[..., 3]
    row0 = torch.stack([sx * K[..., 0, 0], sx * K[..., 0, 1], sx * (K[..., 0, 2] - box[..., 0]) + 0.5 * (sx - 1)], -1)
    row1 = torch.stack([sy * K[..., 1, 0], sy * K[..., 1, 1], sy * (K[..., 1, 2] - box[..., 1]) + 0.5 * (sy - 1)], -1)
    return torch.stack([row0, row1, K[..., 2, :]], dim=-2)


def look_at_T_co(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """Pose ``T_co`` of a camera at ``eye`` looking at ``target`` (OpenCV axes: x right, y down, z forward).

    The camera z axis points from ``eye`` to ``target``; x = normalise(z x up) (right), y = z x x (down, i.e. the
    image's upward direction is as close to ``up`` as possible). "o" is the frame ``eye``, ``target`` and ``up``
    are given in (the object/world frame). Rows of ``R_co`` are the camera axes; ``t_co = -R_co eye``.

    Args:
        eye: ``[*, 3]`` camera centre (metres); leading dims of the three inputs broadcast.
        target: ``[*, 3]`` point the optical axis passes through (projects to the principal point).
        up: ``[*, 3]`` approximate up direction (need not be unit or orthogonal to the view direction).

    Returns:
        ``T_co [*, 4, 4]``, dtype/device of ``eye``.

    Raises:
        InvalidInputError: ``eye == target``, or ``up`` parallel to the viewing direction.

    Example:
        >>> T = look_at_T_co(torch.tensor([0.0, 0.0, -1.0]), torch.zeros(3), torch.tensor([0.0, -1.0, 0.0]))
        >>> T + 0.0
        tensor([[1., 0., 0., 0.],
                [0., 1., 0., 0.],
                [0., 0., 1., 1.],
                [0., 0., 0., 1.]])
    """
    fn = "look_at_T_co"
    for name, x in (("eye", eye), ("target", target), ("up", up)):
        check_tail(x, (3,), fn, name, "[*, 3]")
    target, up = target.to(eye), up.to(eye)
    batch = torch.broadcast_shapes(eye.shape[:-1], target.shape[:-1], up.shape[:-1])
    eye, target, up = eye.expand(*batch, 3), target.expand(*batch, 3), up.expand(*batch, 3)
    eps = unit_eps(eye.dtype)
    fwd = target - eye
    n_fwd = fwd.norm(dim=-1, keepdim=True)
    if bool((n_fwd <= eps).any()):
        raise InvalidInputError(f"{fn}: eye and target coincide; the viewing direction is undefined")
    z = fwd / n_fwd
    x = torch.linalg.cross(z, up, dim=-1)
    n_x = x.norm(dim=-1, keepdim=True)
    if bool((n_x <= eps * up.norm(dim=-1, keepdim=True).clamp_min(eps)).any()):
        raise InvalidInputError(f"{fn}: up is zero or parallel to target - eye; give an up not along the view axis")
    x = x / n_x
    y = torch.linalg.cross(z, x, dim=-1)
    R = torch.stack([x, y, z], dim=-2)
    t = -(R @ eye[..., None])[..., 0]
    return make_T(R, t)
