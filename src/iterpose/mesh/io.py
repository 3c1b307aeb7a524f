"""Loading object meshes: BOP PLY (ASCII or binary, vertex colours and normals), OBJ, STL, ... into
:class:`~iterpose.mesh.ObjectModel` in metres, and raw BOP model points for evaluation.

Units are converted here, once: ``unit`` names the unit of the file ("mm" for BOP) and everything returned in an
``ObjectModel`` is in metres. A size that is implausible after conversion (diameter < 2 mm or > 20 m) is almost
surely a wrong ``unit`` and raises :class:`~iterpose.errors.UnitError` with the unit that would fit.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from iterpose.data.units import UNIT_TO_M, mm_from_m  # the one unit table (NumPy-only leaf module); re-exported
from iterpose.errors import DataFormatError, InvalidInputError, IterposeError, MeshError, MissingFileError, UnitError
from iterpose._atomic import atomic_write_text
from iterpose.mesh.model import ContinuousSymmetry, ObjectModel, vertex_normals
from iterpose.mesh.models_info import ModelInfo, load_models_info, pts_diameter
from iterpose.mesh.ply_points import load_points_mm  # re-exported (lives in a torch-free module)

__all__ = [
    "UNIT_TO_M",
    "MESH_SUFFIXES",
    "MIN_DIAMETER_M",
    "MAX_DIAMETER_M",
    "load_mesh",
    "load_points_mm",
    "load_objects",
    "save_ply",
    "obj_id_from_path",
    "mesh_files_by_id",
]


MESH_SUFFIXES = (".ply", ".obj", ".stl", ".off", ".glb", ".gltf")
"""File suffixes :func:`load_mesh` reads (through trimesh) and :func:`load_objects` picks up."""

MIN_DIAMETER_M = 0.002
MAX_DIAMETER_M = 20.0
"""A diameter outside [MIN_DIAMETER_M, MAX_DIAMETER_M] after unit conversion is reported as a unit mistake."""

_log = logging.getLogger("iterpose.mesh")

#: What trimesh raises on parts of a file it cannot interpret (it has no exception type of its own).
_TRIMESH_ERRORS = (ValueError, KeyError, IndexError, TypeError, AttributeError, OSError, RuntimeError)

_OBJ_ID_RE = re.compile(r"^obj_(\d+)$")


# ----------------------------------------------------------------------------------------------------------------
# Raw reading (file units, no validation)


@dataclass(frozen=True, eq=False)
class RawMesh:
    """A mesh as read from the file, before validation and unit conversion.

    Attributes:
        path: the file.
        vertices: ``[V, 3]`` float64, in the file's unit.
        faces: ``[F, 3]`` int64 vertex indices (may be out of range: not yet validated).
        colors: ``[V, 3]`` float32 RGB in 0..1, or ``None`` when the file has no colour or texture.
        normals: ``[V, 3]`` float32 as stored in the file (not renormalised), or ``None`` when the file has none.
    """

    path: Path
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None
    normals: np.ndarray | None


def _check_unit(unit: str, func: str) -> float:
    if unit not in UNIT_TO_M:
        raise InvalidInputError(f"{func}: unit={unit!r} is not one of {sorted(UNIT_TO_M)}; BOP models use 'mm'")
    return UNIT_TO_M[unit]


def _ply_props(mesh) -> dict[str, np.ndarray] | None:
    raw = mesh.metadata.get("_ply_raw") if hasattr(mesh, "metadata") else None
    if not raw or "vertex" not in raw:
        return None
    data = raw["vertex"].get("data")
    if isinstance(data, np.ndarray) and data.dtype.names:
        return {n: data[n] for n in data.dtype.names}
    return dict(data) if isinstance(data, Mapping) else None


def _colors_from_ply(props: dict[str, np.ndarray], n: int) -> np.ndarray | None:
    for names in (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(k in props for k in names):
            c = np.stack([np.asarray(props[k]).reshape(-1) for k in names], axis=1)
            if c.shape[0] != n:
                return None
            if np.issubdtype(c.dtype, np.integer):
                return (c.astype(np.float32) / np.float32(255.0)).astype(np.float32)
            c = c.astype(np.float32)
            return np.clip(c / 255.0 if c.max(initial=0.0) > 1.0 else c, 0.0, 1.0).astype(np.float32)
    return None


def _obj_file_normals(path: Path, n_vertices: int) -> np.ndarray | None:
    """Vertex normals stored in an OBJ file (trimesh.load recomputes them), when they map 1:1 to vertices."""
    import trimesh

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            parsed = trimesh.exchange.obj.load_obj(f)
        geoms = list(parsed.get("geometry", {}).values()) if "geometry" in parsed else [parsed]
        if len(geoms) != 1:
            return None
        vn = geoms[0].get("vertex_normals")
    except _TRIMESH_ERRORS as exc:
        _log.warning("load_mesh: %s: the OBJ vertex normals could not be read (%s: %s); they are dropped and "
                     "recomputed from the faces", path, type(exc).__name__, exc)
        return None
    if vn is not None and np.asarray(vn).shape != (n_vertices, 3):
        _log.info("load_mesh: %s: the OBJ vertex normals do not map 1:1 to the vertices; they are dropped", path)
    if vn is None or np.asarray(vn).shape != (n_vertices, 3):
        return None
    return np.asarray(vn, np.float32)


def _visual_colors(mesh, path: Path) -> np.ndarray | None:
    """Vertex colours from trimesh's visual: per-vertex or per-face colours, or a texture sampled at vertices."""
    visual = getattr(mesh, "visual", None)
    kind = getattr(visual, "kind", None)
    try:
        if kind == "texture":
            visual = visual.to_color()
            kind = getattr(visual, "kind", None)
        if kind in ("vertex", "face"):
            c = np.asarray(visual.vertex_colors)[:, :3]
            if c.shape[0] == len(mesh.vertices):
                return (c.astype(np.float32) / np.float32(255.0)).astype(np.float32)
    except _TRIMESH_ERRORS as exc:  # textures without image or UVs: treat as "no colour"
        _log.warning("load_mesh: %s: the texture could not be sampled at the vertices (%s: %s); the model has no "
                     "colours (renders grey)", path, type(exc).__name__, exc)
        return None
    return None


def read_raw_mesh(path: str | Path) -> RawMesh:
    """Read a mesh file with trimesh (``process=False``: vertices and faces as stored), no unit conversion.

    Raises:
        MissingFileError: ``path`` does not exist.
        DataFormatError: the file is not a readable mesh of a supported type (the message names the file).
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"load_mesh: {path}: file does not exist")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise DataFormatError(
            f"load_mesh: {path}: unsupported file type {path.suffix!r}; supported: {', '.join(MESH_SUFFIXES)}"
        )
    try:
        mesh = trimesh.load(str(path), process=False, force="mesh")
        if len(mesh.vertices) == 0:  # force="mesh" empties point clouds: reload to report "no faces" instead
            mesh = trimesh.load(str(path), process=False)
            if not isinstance(mesh, trimesh.PointCloud):
                mesh = trimesh.load(str(path), process=False, force="mesh")
        vertices = np.asarray(mesh.vertices, dtype=np.float64).reshape(-1, 3)
        faces = np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), dtype=np.int64).reshape(-1, 3)
    except IterposeError:
        raise
    except _TRIMESH_ERRORS as exc:  # trimesh raises anything from KeyError to ValueError on a corrupt file
        raise DataFormatError(
            f"load_mesh: {path}: corrupt or not a valid {path.suffix.lstrip('.').upper()} mesh "
            f"({type(exc).__name__}: {exc}); re-export it (e.g. from MeshLab or Blender)"
        ) from None
    props = _ply_props(mesh) if path.suffix.lower() == ".ply" else None
    if props is not None:  # PLY: trust only what is really in the file
        colors = _colors_from_ply(props, len(vertices))
        if colors is None and getattr(mesh.visual, "kind", None) == "texture":
            colors = _visual_colors(mesh, path)
        normals = None
        if all(k in props for k in ("nx", "ny", "nz")):
            normals = np.stack([np.asarray(props[k]).reshape(-1) for k in ("nx", "ny", "nz")], 1).astype(np.float32)
            if normals.shape[0] != len(vertices):
                _log.warning("load_mesh: %s: %d normals for %d vertices; the normals are dropped", path,
                             normals.shape[0], len(vertices))
                normals = None
    else:
        colors = _visual_colors(mesh, path)
        normals = _obj_file_normals(path, len(vertices)) if path.suffix.lower() == ".obj" else None
    return RawMesh(path, vertices, faces, colors, normals)


# ----------------------------------------------------------------------------------------------------------------
# Validation


def suggest_unit(diameter_file_units: float) -> str | None:
    """The unit in {"mm", "cm", "m"} that makes a diameter (given in file units) most plausible (closest to 10 cm
    on a log scale within [MIN_DIAMETER_M, MAX_DIAMETER_M]); ``None`` when none is plausible."""
    best, best_score = None, math.inf
    for unit, scale in UNIT_TO_M.items():
        d = diameter_file_units * scale
        if MIN_DIAMETER_M <= d <= MAX_DIAMETER_M:
            score = abs(math.log10(d / 0.1))
            if score < best_score:
                best, best_score = unit, score
    return best


def _fmt_length(d_m: float) -> str:
    if d_m < 1e-2:
        return f"{mm_from_m(d_m):.3g} mm"
    if d_m < 1.0:
        return f"{d_m * 1e2:.3g} cm"
    return f"{d_m:.3g} m"


def unit_error(name: str, diameter_file_units: float, unit: str) -> UnitError | None:
    """A :class:`UnitError` when the diameter (file units) is implausible with ``unit``, else ``None``."""
    d_m = diameter_file_units * UNIT_TO_M[unit]
    if MIN_DIAMETER_M <= d_m <= MAX_DIAMETER_M:
        return None
    units_word = {"mm": "millimetres", "cm": "centimetres", "m": "metres"}
    fit = suggest_unit(diameter_file_units)
    hint = (
        f"the file is probably in {units_word[fit]} — pass unit='{fit}'"
        if fit is not None and fit != unit
        else "check the file's unit and scale"
    )
    return UnitError(
        f"{name}: diameter is {_fmt_length(d_m)} with unit='{unit}' (plausible objects are "
        f"{mm_from_m(MIN_DIAMETER_M):g} mm to {MAX_DIAMETER_M:g} m); {hint}"
    )


def geometry_errors(raw: RawMesh, unit: str, diameter: float | None = None) -> list[IterposeError]:
    """Every blocking problem of a raw mesh, as exception instances (not raised), in order of severity.

    Checks: no vertices, no faces, NaN/inf vertices, face indices out of range, all faces degenerate (zero area),
    and an implausible size for ``unit``. ``diameter`` (file units) skips recomputing it when known.
    """
    name, errors = raw.path.name, []
    v, f = raw.vertices, raw.faces
    if v.shape[0] == 0:
        return [MeshError(f"{raw.path}: the mesh has no vertices; the file is empty or holds another element")]
    if f.shape[0] == 0:
        errors.append(MeshError(f"{raw.path}: the mesh has no faces (a point cloud?); a triangle mesh is needed"))
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        errors.append(
            MeshError(
                f"{raw.path}: {int(bad.sum())} of {v.shape[0]} vertices are NaN or inf (first at index "
                f"{int(np.argmax(bad))}); repair or re-export the mesh"
            )
        )
    if f.shape[0] and (f.min() < 0 or f.max() >= v.shape[0]):
        errors.append(
            MeshError(
                f"{raw.path}: face indices range {int(f.min())}..{int(f.max())} but there are only {v.shape[0]} "
                f"vertices; the file is inconsistent"
            )
        )
    if errors:
        return errors
    if f.shape[0]:
        tri = v[f]
        area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        if not (area2 > 0).any():
            errors.append(MeshError(f"{raw.path}: all {f.shape[0]} faces are degenerate (zero area)"))
    d = pts_diameter(v) if diameter is None else diameter
    err = unit_error(name, d, unit)
    if err is not None:
        errors.append(err)
    return errors


# ----------------------------------------------------------------------------------------------------------------
# Public loaders


def obj_id_from_path(path: str | Path) -> int | None:
    """The object id in a BOP file name (``obj_000005.ply`` -> 5), or ``None`` when the name has none."""
    m = _OBJ_ID_RE.match(Path(path).stem)
    return int(m.group(1)) if m else None


def mesh_files_by_id(folder: str | Path) -> dict[int, list[Path]]:
    """``{obj_id: [paths]}`` of the ``obj_<id>.<mesh suffix>`` files of a folder, ids ascending, paths sorted by
    name (more than one path for an id is a conflict: :func:`load_objects` refuses it, ``iterpose check`` reports
    it)."""
    out: dict[int, list[Path]] = {}
    for p in sorted(Path(folder).iterdir()):
        oid = obj_id_from_path(p)
        if oid is not None and p.suffix.lower() in MESH_SUFFIXES and p.is_file():
            out.setdefault(oid, []).append(p)
    return dict(sorted(out.items()))


def load_mesh(
    path: str | Path,
    obj_id: int | None = None,
    unit: str = "mm",
    name: str | None = None,
    models_info: ModelInfo | Mapping[int, ModelInfo] | None = None,
) -> ObjectModel:
    """Load one mesh file as an :class:`ObjectModel` in metres.

    Args:
        path: PLY (ASCII or binary; BOP models), OBJ, STL, OFF, GLB/GLTF file.
        obj_id: the object id; by default the number in a BOP name such as ``obj_000005.ply``.
        unit: unit of the file's coordinates: "mm" (BOP), "cm" or "m".
        name: display name; the file stem by default.
        models_info: the object's :class:`ModelInfo` (same unit as the file), or a ``{obj_id: ModelInfo}`` mapping;
            when given, its diameter and symmetries are used (converted to metres), otherwise the diameter is
            computed from the vertices and the object has no symmetries.

    Returns:
        ObjectModel with ``vertices [V,3]`` float32 m, ``faces [F,3]`` int64, ``vertex_colors [V,3]`` float32 0..1
        (from vertex colours, or a texture sampled at the vertices) or ``None``, ``vertex_normals [V,3]`` float32
        unit (as stored in the file, renormalised) or ``None``, on the CPU.

    Raises:
        MissingFileError: no such file.
        DataFormatError: corrupt or unsupported file; ``models_info`` mapping without this ``obj_id``.
        MeshError: no vertices, no faces, NaN/inf vertices, face indices out of range, all faces degenerate.
        UnitError: diameter below 2 mm or above 20 m after conversion (message suggests the likely unit).
        InvalidInputError: unknown ``unit``, or no ``obj_id`` given and none in the file name.
    """
    scale = _check_unit(unit, "load_mesh")
    path = Path(path)
    if obj_id is None:
        obj_id = obj_id_from_path(path)
        if obj_id is None:
            raise InvalidInputError(
                f"load_mesh: cannot infer the object id from the file name {path.name!r} (expected 'obj_000005.ply'); "
                f"pass obj_id=..."
            )
    info = models_info
    if isinstance(models_info, Mapping):
        if obj_id not in models_info:
            raise DataFormatError(
                f"load_mesh: models_info has no entry for obj_id {obj_id} ({path.name}); ids present: "
                f"{sorted(models_info)[:20]}"
            )
        info = models_info[obj_id]
    raw = read_raw_mesh(path)
    v = raw.vertices
    finite = v.shape[0] > 0 and bool(np.isfinite(v).all())
    diameter_file = pts_diameter(v) if finite else None  # computed once: unit check and (without info) diameter_m
    errors = geometry_errors(raw, unit, diameter=diameter_file)
    if errors:
        raise errors[0]
    if info is not None:
        diameter_m = float(info.diameter_mm) * scale
        sym_d = np.array(info.symmetries_discrete, np.float64).reshape(-1, 4, 4).copy()
        sym_d[:, :3, 3] *= scale
        sym_c = tuple(
            ContinuousSymmetry(
                axis=tuple(float(a) / math.hypot(*axis) for a in axis), offset_m=tuple(float(o) * scale for o in off)
            )
            for axis, off in info.symmetries_continuous
        )
    else:
        diameter_m = diameter_file * scale
        sym_d, sym_c = np.zeros((0, 4, 4), np.float64), ()
    normals = None
    if raw.normals is not None:
        n = raw.normals.astype(np.float64)
        norm = np.linalg.norm(n, axis=1, keepdims=True)
        if np.isfinite(n).all() and (norm > 0).all():
            normals = torch.from_numpy((n / norm).astype(np.float32))
        else:
            _log.warning("load_mesh: %s: some vertex normals are zero or not finite; the normals are dropped "
                         "(the renderer computes them from the faces)", path)
    return ObjectModel(
        obj_id=int(obj_id),
        name=name if name is not None else path.stem,
        vertices=torch.from_numpy((v * scale).astype(np.float32)),
        faces=torch.from_numpy(raw.faces.astype(np.int64)),
        vertex_colors=None if raw.colors is None else torch.from_numpy(np.ascontiguousarray(raw.colors)),
        vertex_normals=normals,
        diameter_m=float(diameter_m),
        symmetries_discrete=torch.from_numpy(sym_d),
        symmetries_continuous=sym_c,
        source=str(path),
    )


def load_objects(
    models_dir: str | Path, unit: str = "mm", obj_ids: Iterable[int] | None = None
) -> dict[int, ObjectModel]:
    """Load every ``obj_<id>.<ext>`` mesh of a folder (a BOP ``models/`` folder) as ``{obj_id: ObjectModel}``.

    When ``models_info.json`` is in the folder, its diameters and symmetries are used (converted from ``unit`` to
    metres, like the meshes); otherwise diameters are computed from the vertices and objects have no symmetries.

    Args:
        models_dir: folder with ``obj_000001.ply``, ... (any suffix in :data:`MESH_SUFFIXES`).
        unit: unit of the files: "mm" (BOP), "cm" or "m".
        obj_ids: load only these ids (all by default).

    Returns:
        dict from obj_id to ObjectModel (metres, CPU), sorted by id.

    Raises:
        MissingFileError: the folder does not exist, holds no ``obj_*`` mesh, or a requested id has no file.
        DataFormatError: two files with the same id, ``models_info.json`` invalid or without an entry for a mesh.
        MeshError, UnitError: as :func:`load_mesh`.
    """
    _check_unit(unit, "load_objects")
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise MissingFileError(f"load_objects: models folder {models_dir} does not exist")
    files: dict[int, Path] = {}
    for oid, paths in mesh_files_by_id(models_dir).items():
        if len(paths) > 1:
            raise DataFormatError(
                f"load_objects: obj_id {oid} has two mesh files in {models_dir}: {paths[0].name} and {paths[1].name}; "
                f"keep one"
            )
        files[oid] = paths[0]
    if not files:
        raise MissingFileError(
            f"load_objects: no mesh named obj_<id>{'|'.join(MESH_SUFFIXES)} in {models_dir} (BOP names them "
            f"obj_000001.ply)"
        )
    if obj_ids is not None:
        wanted = sorted({int(i) for i in obj_ids})
        missing = [i for i in wanted if i not in files]
        if missing:
            raise MissingFileError(
                f"load_objects: no mesh for obj_id {missing} in {models_dir}; available ids: {sorted(files)}"
            )
        files = {i: files[i] for i in wanted}
    infos_path = models_dir / "models_info.json"
    infos = load_models_info(infos_path) if infos_path.is_file() else None
    if infos is not None:
        missing = [i for i in files if i not in infos]
        if missing:
            raise DataFormatError(
                f"load_objects: {infos_path} has no entry for obj_id {missing}; add them (diameter in {unit}) or "
                f"remove the file to compute diameters"
            )
    return {
        oid: load_mesh(p, obj_id=oid, unit=unit, models_info=None if infos is None else infos[oid])
        for oid, p in sorted(files.items())
    }


# ----------------------------------------------------------------------------------------------------------------
# Writing


#: Albedo written for a model without vertex colours (mid grey).
SAVE_PLY_DEFAULT_GREY = 0.7


def save_ply(path, model: ObjectModel, unit: str = "mm") -> Path:
    """Write ``model`` as an ASCII BOP-style PLY (x y z nx ny nz red green blue, triangles), atomically.

    Args:
        path: destination ``.ply``.
        model: the object (metres); normals are computed when it has none (:func:`~iterpose.mesh.model.
            vertex_normals`), colours are :data:`SAVE_PLY_DEFAULT_GREY` when none.
        unit: unit of the written coordinates: "mm" (BOP), "cm" or "m" (:data:`UNIT_TO_M`).

    Returns:
        ``path``. Reading it back with ``load_mesh(path, unit=unit)`` gives the vertices to 1e-6 m (``%.6f`` in mm).

    Raises:
        InvalidInputError: an unknown ``unit``.
    """
    if unit not in UNIT_TO_M:
        raise InvalidInputError(f"save_ply: unit={unit!r} is not one of {sorted(UNIT_TO_M)}")
    vertices_f32 = model.vertices.detach().cpu()
    faces = model.faces.detach().cpu().long()
    v = vertices_f32.double().numpy() * (1.0 / UNIT_TO_M[unit])  # exactly 1000, 100 or 1
    if model.vertex_normals is not None:
        n = model.vertex_normals.detach().cpu().float().numpy()
    else:
        n = vertex_normals(vertices_f32.float(), faces).numpy()
    if model.vertex_colors is not None:
        colors = model.vertex_colors.detach().cpu().float().numpy()
    else:
        colors = np.full((v.shape[0], 3), SAVE_PLY_DEFAULT_GREY, np.float32)
    c = np.clip(np.round(colors.astype(np.float64) * 255.0), 0, 255).astype(np.int64)
    header = (
        "ply\nformat ascii 1.0\ncomment written by iterpose (unit: {unit})\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    ).replace("{unit}", unit)
    rows = [f"{a:.6f} {b:.6f} {z:.6f} {p:.6f} {q:.6f} {r:.6f} {x} {y} {w}"
            for (a, b, z), (p, q, r), (x, y, w) in zip(v.tolist(), n.astype(np.float64).tolist(), c.tolist())]
    face_rows = [f"3 {i} {j} {k}" for i, j, k in faces.numpy().tolist()]
    return atomic_write_text(path, header + "\n".join(rows + face_rows) + "\n")
