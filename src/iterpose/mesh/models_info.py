"""BOP ``models_info.json``: per-object diameter, bounding box and symmetries, in the model file's unit (mm).

The JSON maps an object id (string) to ``diameter`` (largest vertex-to-vertex distance), ``min_x/y/z`` and
``size_x/y/z`` (axis-aligned bounding box), and optionally ``symmetries_discrete`` (16 row-major floats per 4x4
transform ``[R t; 0 1]``, ``t`` in mm) and ``symmetries_continuous`` (``{"axis": [3], "offset": [3]}``, offset in mm).
Values keep BOP's unit (millimetres); :func:`iterpose.mesh.load_objects` converts them to metres, once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iterpose.data.units import mm_from_m
from iterpose.errors import DataFormatError, MissingFileError

__all__ = [
    "ModelInfo",
    "load_models_info",
    "save_models_info",
    "compute_model_info",
    "pts_diameter",
]

Vec3 = tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """One object's entry of ``models_info.json``, in millimetres (the unit of BOP model files).

    Attributes:
        diameter_mm: largest distance between two model vertices, mm.
        min_xyz_mm: ``(min_x, min_y, min_z)`` of the bounding box, mm, model frame; ``None`` when absent.
        size_xyz_mm: ``(size_x, size_y, size_z)`` of the bounding box, mm; ``None`` when absent.
        symmetries_discrete: ``[S, 4, 4]`` float64 model-frame transforms ``[R t; 0 1]``, ``t`` in mm, identity
            not included; ``[0, 4, 4]`` when none.
        symmetries_continuous: tuple of ``(axis, offset_mm)`` pairs, each a 3-tuple: a unit rotation axis and a
            point on it (mm), model frame.
    """

    diameter_mm: float
    min_xyz_mm: Vec3 | None = None
    size_xyz_mm: Vec3 | None = None
    symmetries_discrete: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4), np.float64))
    symmetries_continuous: tuple[tuple[Vec3, Vec3], ...] = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelInfo):
            return NotImplemented
        return (
            self.diameter_mm == other.diameter_mm
            and self.min_xyz_mm == other.min_xyz_mm
            and self.size_xyz_mm == other.size_xyz_mm
            and np.array_equal(self.symmetries_discrete, other.symmetries_discrete)
            and self.symmetries_continuous == other.symmetries_continuous
        )

    __hash__ = None  # type: ignore[assignment]


def _floats(value: object, n: int, where: str) -> tuple[float, ...]:
    """``value`` as a tuple of ``n`` finite floats, else a :class:`DataFormatError` naming ``where``."""
    ok = isinstance(value, (list, tuple)) and len(value) == n
    if ok:
        try:
            out = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            ok = False
        else:
            ok = all(math.isfinite(v) for v in out) and not any(isinstance(v, bool) for v in value)
    if not ok:
        raise DataFormatError(f"{where}: expected a list of {n} finite numbers, got {value!r:.120}")
    return out


def _parse_entry(entry: object, where: str) -> ModelInfo:
    if not isinstance(entry, Mapping):
        raise DataFormatError(f"{where}: expected an object with 'diameter', 'min_x', ..., got {entry!r:.80}")
    if "diameter" not in entry:
        raise DataFormatError(f"{where}: missing key 'diameter' (largest vertex distance in mm); add it")
    (diameter,) = _floats([entry["diameter"]], 1, f"{where} 'diameter'")
    if diameter <= 0:
        raise DataFormatError(f"{where} 'diameter': must be > 0 mm, got {diameter}")
    min_xyz = size_xyz = None
    if all(k in entry for k in ("min_x", "min_y", "min_z")):
        min_xyz = _floats([entry["min_x"], entry["min_y"], entry["min_z"]], 3, f"{where} 'min_x/y/z'")
    if all(k in entry for k in ("size_x", "size_y", "size_z")):
        size_xyz = _floats([entry["size_x"], entry["size_y"], entry["size_z"]], 3, f"{where} 'size_x/y/z'")
    syms = entry.get("symmetries_discrete", [])
    if not isinstance(syms, list):
        raise DataFormatError(f"{where} 'symmetries_discrete': expected a list of 16-float lists")
    sym_d = np.array(
        [_floats(s, 16, f"{where} 'symmetries_discrete'[{i}]") for i, s in enumerate(syms)], np.float64
    ).reshape(-1, 4, 4)
    sym_c = []
    conts = entry.get("symmetries_continuous", [])
    if not isinstance(conts, list):
        raise DataFormatError(f"{where} 'symmetries_continuous': expected a list of {{axis, offset}} objects")
    for i, c in enumerate(conts):
        w = f"{where} 'symmetries_continuous'[{i}]"
        if not isinstance(c, Mapping) or "axis" not in c or "offset" not in c:
            raise DataFormatError(f"{w}: expected {{'axis': [3 floats], 'offset': [3 floats]}}, got {c!r:.80}")
        axis = _floats(c["axis"], 3, f"{w} 'axis'")
        if math.hypot(*axis) < 1e-9:
            raise DataFormatError(f"{w} 'axis': the axis is zero; give a direction such as [0, 0, 1]")
        sym_c.append((axis, _floats(c["offset"], 3, f"{w} 'offset'")))
    return ModelInfo(diameter, min_xyz, size_xyz, sym_d, tuple(sym_c))


def load_models_info(path: str | Path) -> dict[int, ModelInfo]:
    """Read a BOP ``models_info.json``.

    Args:
        path: the JSON file.

    Returns:
        ``{obj_id: ModelInfo}`` with values in the file's unit (mm for BOP), sorted by id.

    Raises:
        MissingFileError: the file does not exist.
        DataFormatError: invalid JSON, a non-integer key, or an entry without a valid ``diameter`` or with malformed
            symmetries (the message names the file, the object id and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"load_models_info: {path} does not exist; BOP puts it in the models/ folder")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"load_models_info: {path} is not valid JSON ({exc})") from None
    if not isinstance(content, dict):
        raise DataFormatError(f"load_models_info: {path} must hold a JSON object keyed by obj_id strings")
    infos: dict[int, ModelInfo] = {}
    for key, entry in content.items():
        try:
            obj_id = int(key)
        except ValueError:
            raise DataFormatError(f"load_models_info: {path}: key {key!r} is not an integer object id") from None
        infos[obj_id] = _parse_entry(entry, f"{path} obj_id {obj_id}")
    return dict(sorted(infos.items()))


def _entry_to_json(info: ModelInfo) -> dict:
    out: dict = {"diameter": float(info.diameter_mm)}
    if info.min_xyz_mm is not None:
        out.update(zip(("min_x", "min_y", "min_z"), map(float, info.min_xyz_mm)))
    if info.size_xyz_mm is not None:
        out.update(zip(("size_x", "size_y", "size_z"), map(float, info.size_xyz_mm)))
    if info.symmetries_discrete.shape[0] > 0:
        out["symmetries_discrete"] = [[float(v) for v in m.reshape(16)] for m in info.symmetries_discrete]
    if info.symmetries_continuous:
        out["symmetries_continuous"] = [
            {"axis": [float(v) for v in a], "offset": [float(v) for v in o]} for a, o in info.symmetries_continuous
        ]
    return out


def save_models_info(path: str | Path, infos: Mapping[int, ModelInfo]) -> None:
    """Write ``infos`` as a BOP ``models_info.json`` (one object per line, ids ascending, keys sorted, like
    bop_toolkit ``inout.save_json``). Values are written in mm, unchanged. Does not modify ``infos``."""
    lines = [
        f'  "{int(k)}": {json.dumps(_entry_to_json(infos[k]), sort_keys=True)}' for k in sorted(infos, key=int)
    ]
    Path(path).write_text("{\n" + ",\n".join(lines) + ("\n" if lines else "") + "}")


def pts_diameter(pts: np.ndarray) -> float:
    """Largest Euclidean distance between two points, in the points' unit.

    Same arithmetic as bop_toolkit ``misc.calc_pts_diameter`` (``sqrt(max(sum((p_i - p_j)**2)))`` in float64), so
    the result is bit-identical; for more than 2000 points it runs on the convex-hull vertices (the farthest pair
    is always among them) and falls back to the full set when the hull is degenerate (flat or collinear points).

    Args:
        pts: ``[N, 3]`` array (any float dtype, converted to float64), N >= 1.

    Returns:
        The diameter as a Python float (0.0 for a single point).
    """
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    if pts.shape[0] > 2000:
        try:
            from scipy.spatial import ConvexHull, QhullError

            pts = pts[ConvexHull(pts).vertices]
        except (QhullError, ValueError):  # qhull fails on flat/collinear sets: use all points (exact, slower)
            pass
    best = 0.0
    chunk = max(1, 4_000_000 // max(pts.shape[0], 1))
    for start in range(0, pts.shape[0], chunk):
        diff = pts[start : start + chunk, None, :] - pts[None, :, :]
        best = max(best, float((diff * diff).sum(axis=-1).max()))
    return math.sqrt(best)


def compute_model_info(obj) -> ModelInfo:
    """Diameter and bounding box of an :class:`~iterpose.mesh.ObjectModel`, in mm, with its symmetries.

    Args:
        obj: the object model (vertices in metres, float32).

    Returns:
        :class:`ModelInfo` in millimetres. The values are computed from the float32 metre vertices, so they match
        a BOP ``models_info.json`` computed from the original mm file to about 1e-6 relative.
    """
    v_mm = mm_from_m(obj.vertices.detach().cpu().double().numpy())
    lo, hi = v_mm.min(axis=0), v_mm.max(axis=0)
    sym_d = obj.symmetries_discrete.detach().cpu().double().numpy().copy()
    sym_d[:, :3, 3] = mm_from_m(sym_d[:, :3, 3])
    sym_c = tuple(
        (tuple(float(a) for a in s.axis), tuple(mm_from_m(float(o)) for o in s.offset_m))
        for s in obj.symmetries_continuous
    )
    return ModelInfo(
        diameter_mm=pts_diameter(v_mm),
        min_xyz_mm=tuple(float(x) for x in lo),
        size_xyz_mm=tuple(float(x) for x in hi - lo),
        symmetries_discrete=sym_d,
        symmetries_continuous=sym_c,
    )
