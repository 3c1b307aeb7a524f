"""Writing a BOP-format dataset: JSON files formatted like bop_toolkit's ``inout.save_json``, images, depth,
masks. Used by the synthetic data generator and by tests.

Every writer:
- never modifies its arguments (bop_toolkit's ``save_scene_gt`` does; this one converts into a new dict);
- writes atomically: the content goes to a temporary file in the destination folder, then ``os.replace``
  moves it in place, so an interrupted or failing writer leaves no half-written file at the destination;
- takes BOP units (millimetres, ``R`` row-major) like the files; use :mod:`iterpose.data.units` to convert
  iterpose's ``T_co`` (metres) first;
- accepts the records of :mod:`iterpose.data.bop` (``CameraInfo``, ``GtInstance``, ``GtInfo``, ``Target``) or
  plain dicts with BOP's field names (numpy arrays or lists).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from iterpose._atomic import atomic_write_bytes, atomic_write_text
from iterpose.data.images import encode_image
from iterpose.errors import InvalidInputError, ShapeError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "format_json",
    "save_json",
    "save_camera",
    "save_scene_camera",
    "save_scene_gt",
    "save_scene_gt_info",
    "save_targets",
    "save_rgb",
    "save_depth_mm",
    "save_mask",
]


# ----------------------------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------------------------


# atomic_write_bytes / atomic_write_text live in iterpose._atomic (the mesh layer writes PLY files with them).


# ----------------------------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------------------------


def _plain(x: Any, where: str) -> Any:
    """A JSON-ready copy of ``x``: numpy arrays -> lists, numpy scalars -> Python numbers, dataclasses -> dicts,
    tuples -> lists; NaN/inf rejected (BOP's readers cannot parse them)."""
    if is_dataclass(x) and not isinstance(x, type):
        x = asdict(x)
    if isinstance(x, Mapping):
        return {k: _plain(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return _plain(x.tolist(), where)
    if isinstance(x, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        raise InvalidInputError(f"save_json: {where} is {x}; JSON (and bop_toolkit) cannot store NaN or inf")
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise InvalidInputError(f"save_json: {where} has type {type(x).__name__}, which JSON cannot store")


def format_json(content: Any) -> str:
    """Text of ``content`` exactly as bop_toolkit's ``inout.save_json`` writes it: a dict gets one
    ``"key": value`` line per key (sorted by key, values with sorted keys), a list one element per line.

    Example:
        >>> print(format_json({3: {"b": 1, "a": [1.5, 2]}, 10: {}}))
        {
          "3": {"a": [1.5, 2], "b": 1},
          "10": {}
        }
    """
    content = _plain(content, "content")
    if isinstance(content, dict):
        items = sorted(content.items(), key=lambda kv: kv[0])
        body = ",\n".join(f'  "{k}": {json.dumps(v, sort_keys=True)}' for k, v in items)
        return "{\n" + body + ("\n" if items else "") + "}"
    if isinstance(content, list):
        body = ",\n".join(f"  {json.dumps(e, sort_keys=True)}" for e in content)
        return "[\n" + body + ("\n" if content else "") + "]"
    return json.dumps(content, sort_keys=True)


def save_json(path, content: Any) -> Path:
    """Write ``content`` (dict, list or scalar; numpy values allowed) formatted like bop_toolkit, atomically."""
    return atomic_write_text(path, format_json(content))


def _get(entry: Any, attr: str, key: str, where: str, required: bool = True) -> Any:
    if isinstance(entry, Mapping):
        if key in entry:
            return entry[key]
        if attr in entry:
            return entry[attr]
    elif hasattr(entry, attr):
        return getattr(entry, attr)
    if required:
        raise InvalidInputError(f"{where}: missing {key!r}")
    return None


def _flat(v: Any, n: int, key: str, where: str) -> list:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.size != n:
        raise ShapeError(f"{where}: {key} must have {n} numbers, got {a.size} (shape {np.shape(v)})")
    if not np.isfinite(a).all():
        raise InvalidInputError(f"{where}: {key} contains NaN or inf")
    return a.tolist()


def _int(v: Any, key: str, where: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise InvalidInputError(f"{where}: {key} must be an integer, got {v!r}")
    return int(v)


def _check_ids(d: Mapping, fn: str) -> list[int]:
    if not isinstance(d, Mapping):
        raise InvalidInputError(f"{fn}: expected a dict {{im_id: ...}}, got {type(d).__name__}")
    return [_int(k, "image id", fn) for k in d]


# ----------------------------------------------------------------------------------------------------------------
# Dataset JSON files
# ----------------------------------------------------------------------------------------------------------------


def save_camera(path, K, width: int, height: int, depth_scale: Optional[float] = None) -> Path:
    """Write ``camera.json`` (``cx, cy, [depth_scale,] fx, fy, height, width``).

    Args:
        K: ``[3, 3]`` intrinsics in pixels (zero skew).
        width, height: image size in pixels.
        depth_scale: depth PNG value x depth_scale = mm; omitted from the file when ``None``.
    """
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ShapeError(f"save_camera: K must be [3, 3], got shape {K.shape}")
    w, h = _int(width, "width", "save_camera"), _int(height, "height", "save_camera")
    cam = {"cx": float(K[0, 2]), "cy": float(K[1, 2]), "fx": float(K[0, 0]), "fy": float(K[1, 1]),
           "height": h, "width": w}
    if depth_scale is not None:
        cam["depth_scale"] = float(depth_scale)
    # bop_toolkit writes camera.json with save_json on a dict of scalars: one key per line.
    return save_json(path, cam)


def save_scene_camera(path, scene_camera: Mapping) -> Path:
    """Write ``scene_camera.json`` from ``{im_id: CameraInfo | dict}``.

    Dict entries use BOP keys: ``cam_K`` (``[3, 3]`` or 9 numbers), optional ``depth_scale``, ``cam_R_w2c``,
    ``cam_t_w2c`` (mm); other keys (e.g. ``view_level``) are copied. The argument is not modified.
    """
    _check_ids(scene_camera, "save_scene_camera")
    out = {}
    for im_id, cam in scene_camera.items():
        where = f"save_scene_camera: image {im_id}"
        extra = {k: v for k, v in cam.items() if k not in ("cam_K", "depth_scale", "cam_R_w2c", "cam_t_w2c",
                                                            "K", "R_w2c", "t_w2c_mm")} if isinstance(cam, Mapping) else {}
        e: dict[str, Any] = dict(extra)
        e["cam_K"] = _flat(_get(cam, "K", "cam_K", where), 9, "cam_K", where)
        ds = _get(cam, "depth_scale", "depth_scale", where, required=False)
        if ds is not None:
            if not (float(ds) > 0 and math.isfinite(float(ds))):
                raise InvalidInputError(f"{where}: depth_scale must be a positive number, got {ds!r}")
            e["depth_scale"] = float(ds)
        R = _get(cam, "R_w2c", "cam_R_w2c", where, required=False)
        if R is not None:
            e["cam_R_w2c"] = _flat(R, 9, "cam_R_w2c", where)
        t = _get(cam, "t_w2c_mm", "cam_t_w2c", where, required=False)
        if t is not None:
            e["cam_t_w2c"] = _flat(t, 3, "cam_t_w2c", where)
        out[int(im_id)] = e
    return save_json(path, out)


def save_scene_gt(path, scene_gt: Mapping) -> Path:
    """Write ``scene_gt.json`` from ``{im_id: [GtInstance | dict, ...]}`` (list order = ``gt_id``).

    Dict entries use BOP keys ``obj_id``, ``cam_R_m2c`` (``[3, 3]`` or 9, row-major), ``cam_t_m2c`` (3, mm).
    The argument is not modified.
    """
    _check_ids(scene_gt, "save_scene_gt")
    out = {}
    for im_id, insts in scene_gt.items():
        lst = []
        for gt_id, inst in enumerate(insts):
            where = f"save_scene_gt: image {im_id} instance {gt_id}"
            lst.append({
                "cam_R_m2c": _flat(_get(inst, "R", "cam_R_m2c", where), 9, "cam_R_m2c", where),
                "cam_t_m2c": _flat(_get(inst, "t_mm", "cam_t_m2c", where), 3, "cam_t_m2c", where),
                "obj_id": _int(_get(inst, "obj_id", "obj_id", where), "obj_id", where),
            })
        out[int(im_id)] = lst
    return save_json(path, out)


_GT_INFO_INT_KEYS = ("px_count_all", "px_count_valid", "px_count_visib")


def save_scene_gt_info(path, scene_gt_info: Mapping) -> Path:
    """Write ``scene_gt_info.json`` from ``{im_id: [GtInfo | dict, ...]}`` (same order as ``scene_gt``).

    Each entry: ``bbox_obj``, ``bbox_visib`` (4 ints ``[x, y, w, h]``), ``px_count_all``, ``px_count_valid``,
    ``px_count_visib`` (ints), ``visib_fract`` (float). The argument is not modified.
    """
    _check_ids(scene_gt_info, "save_scene_gt_info")
    out = {}
    for im_id, infos in scene_gt_info.items():
        lst = []
        for gt_id, info in enumerate(infos):
            where = f"save_scene_gt_info: image {im_id} instance {gt_id}"
            e: dict[str, Any] = {}
            for key in ("bbox_obj", "bbox_visib"):
                bb = list(_get(info, key, key, where))
                if len(bb) != 4:
                    raise ShapeError(f"{where}: {key} must be 4 integers [x, y, w, h], got {bb!r}")
                e[key] = [_int(v, key, where) for v in bb]
            for key in _GT_INFO_INT_KEYS:
                e[key] = _int(_get(info, key, key, where), key, where)
            vf = float(_get(info, "visib_fract", "visib_fract", where))
            if not math.isfinite(vf):
                raise InvalidInputError(f"{where}: visib_fract must be finite, got {vf}")
            e["visib_fract"] = vf
            lst.append(e)
        out[int(im_id)] = lst
    return save_json(path, out)


def save_targets(path, targets: Sequence) -> Path:
    """Write a targets file (e.g. ``test_targets_bop19.json``): a JSON list of
    ``{"im_id", "inst_count", "obj_id", "scene_id"}``, one per line, in the given order."""
    out = []
    for i, t in enumerate(targets):
        where = f"save_targets: entry {i}"
        out.append({k: _int(_get(t, k, k, where), k, where) for k in ("im_id", "inst_count", "obj_id", "scene_id")})
    return save_json(path, out)


# ----------------------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------------------


def save_rgb(path, rgb: np.ndarray, jpg_quality: int = 95) -> Path:
    """Write a uint8 ``[H, W, 3]`` RGB (or ``[H, W]`` gray) image as PNG or JPEG (by ``path``'s suffix).

    Raises:
        InvalidInputError: not uint8 / unknown suffix. ShapeError: wrong shape.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise InvalidInputError(
            f"save_rgb: image must be uint8 (0..255), got {rgb.dtype}; convert float 0..1 images with "
            "(im * 255).round().astype(np.uint8)"
        )
    path = Path(path)
    return atomic_write_bytes(path, encode_image(path.suffix, rgb, jpg_quality))


def save_depth_mm(path, depth_mm: np.ndarray, depth_scale: float = 1.0) -> Path:
    """Write a depth map as a 16-bit PNG storing ``round(depth_mm / depth_scale)`` (BOP: value x depth_scale
    = mm; 0 = no measurement).

    Args:
        depth_mm: ``[H, W]`` depth in millimetres, >= 0 and finite.
        depth_scale: millimetres per stored unit (e.g. 0.1 stores tenths of mm).

    Raises:
        InvalidInputError: negative/NaN depth, values above 65535 after scaling, bad scale, non-PNG path.
        ShapeError: not ``[H, W]``.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidInputError(f"save_depth_mm: only 16-bit PNG is supported, got {path.name}")
    d = np.asarray(depth_mm, dtype=np.float64)
    if d.ndim != 2:
        raise ShapeError(f"save_depth_mm: depth_mm must be [H, W], got shape {d.shape}")
    if not (math.isfinite(depth_scale) and depth_scale > 0):
        raise InvalidInputError(f"save_depth_mm: depth_scale must be positive, got {depth_scale}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise InvalidInputError("save_depth_mm: depth_mm must be finite and >= 0 (use 0 for no measurement)")
    stored = np.round(d / depth_scale)
    if stored.size and stored.max() > 65535:
        raise InvalidInputError(
            f"save_depth_mm: max depth {d.max()} mm / depth_scale {depth_scale} = {stored.max():.0f} does not fit "
            "16 bits (<= 65535); use a larger depth_scale"
        )
    return atomic_write_bytes(path, encode_image(".png", stored.astype(np.uint16)))


def save_mask(path, mask: np.ndarray) -> Path:
    """Write a bool/0-1 ``[H, W]`` mask as an 8-bit PNG with values 0 and 255 (BOP's mask files)."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ShapeError(f"save_mask: mask must be [H, W], got shape {m.shape}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InvalidInputError(f"save_mask: masks are PNG files, got {path.name}")
    return atomic_write_bytes(path, encode_image(".png", np.where(m > 0, 255, 0).astype(np.uint8)))
