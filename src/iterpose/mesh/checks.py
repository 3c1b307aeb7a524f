"""Validation of mesh files and model folders, reported as a list of :class:`Finding` instead of raised errors.

A check never stops at the first problem: it reports everything it can see, so a user fixes a file once.
Levels: "error" (loading will fail or results will be wrong), "warning" (works, but something is likely off or
missing, e.g. no colours for a photometric refiner) and "info" (a fact worth knowing, e.g. not watertight).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from iterpose.errors import IterposeError, UnitError
from iterpose.mesh.io import MESH_SUFFIXES, UNIT_TO_M, geometry_errors, mesh_files_by_id, read_raw_mesh
from iterpose.mesh.models_info import ModelInfo, load_models_info, pts_diameter

__all__ = ["Finding", "check_mesh", "check_models_dir", "mesh_files", "MAX_VERTICES", "DIAMETER_RTOL"]

Level = Literal["error", "warning", "info"]
Purpose = Literal["render", "eval"]

MAX_VERTICES = 500_000
"""More vertices than this gives a warning: rendering and evaluation get slow."""

DIAMETER_RTOL = {"render": 0.01, "eval": 0.05}
"""Largest relative difference between a ``models_info.json`` diameter and the mesh's own before a warning.
Looser for ``models_eval`` meshes, which are resampled while BOP keeps the full model's diameter."""

_LEVELS = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One result of a check.

    Attributes:
        level: "error", "warning" or "info".
        where: the file, key or object concerned, e.g. ``"models/obj_000001.ply"`` or
            ``"test/000002/scene_camera.json['3'].cam_K"``.
        message: what is wrong and how to fix it.
    """

    level: Level
    where: str
    message: str

    def __post_init__(self) -> None:
        if self.level not in _LEVELS:
            raise ValueError(f"Finding.level must be one of {_LEVELS}, got {self.level!r}")

    def __str__(self) -> str:
        return f"{self.level.upper():<8} {self.where}: {self.message}"


def _strip_where(message: str, where: str) -> str:
    """Drop a leading ``"<path>: "`` or ``"func: <path>: "`` from an error message already located by ``where``."""
    for prefix in (f"{where}: ", f"load_mesh: {where}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return re.sub(r"^load_mesh: ", "", message)


def inspect_mesh(
    path: str | Path, unit: str = "mm", purpose: Purpose = "render", where: str | None = None
) -> tuple[list[Finding], float | None]:
    """:func:`check_mesh` that also returns the mesh diameter in file units (``None`` when it cannot be read)."""
    path = Path(path)
    where = str(path) if where is None else where
    if unit not in UNIT_TO_M:
        return [Finding("error", where, f"unit={unit!r} is not one of {sorted(UNIT_TO_M)}")], None
    try:
        raw = read_raw_mesh(path)
    except IterposeError as exc:
        return [Finding("error", where, _strip_where(str(exc), str(path)))], None
    findings: list[Finding] = []
    finite = raw.vertices.shape[0] > 0 and np.isfinite(raw.vertices).all()
    diameter = pts_diameter(raw.vertices) if finite else None
    for err in geometry_errors(raw, unit, diameter=diameter):
        msg = _strip_where(str(err), str(raw.path))
        if isinstance(err, UnitError):
            msg = re.sub(rf"^{re.escape(raw.path.name)}: ", "", msg)
        findings.append(Finding("error", where, msg))
    if any(f.level == "error" for f in findings):
        return findings, diameter
    v, f = raw.vertices, raw.faces
    if purpose == "render":
        if raw.colors is None:
            findings.append(
                Finding(
                    "warning",
                    where,
                    "no vertex colours or texture: photometric refiners (rgb_lm, repose) need colour; export the "
                    "mesh with per-vertex colours",
                )
            )
        elif float(raw.colors.std(axis=0).max()) < 1e-3:
            findings.append(Finding("info", where, "all vertices have the same colour (no texture gradients)"))
        if raw.normals is None:
            findings.append(
                Finding("warning", where, "no vertex normals in the file: shading computes them from the faces")
            )
    if v.shape[0] > MAX_VERTICES:
        findings.append(
            Finding(
                "warning",
                where,
                f"{v.shape[0]} vertices (more than {MAX_VERTICES}): rendering and evaluation will be slow; "
                f"decimate the mesh (e.g. MeshLab 'Quadric Edge Collapse')",
            )
        )
    tri = v[f]
    zero = ~(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) > 0)
    if zero.any():
        findings.append(Finding("info", where, f"{int(zero.sum())} of {f.shape[0]} faces have zero area"))
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    open_edges = int((counts != 2).sum())
    if open_edges:
        findings.append(
            Finding(
                "info",
                where,
                f"not watertight: {open_edges} edges are not shared by exactly two faces (fine for rendering; "
                f"volume-based checks are unreliable)",
            )
        )
    return findings, diameter


def check_mesh(path: str | Path, unit: str = "mm", purpose: Purpose = "render") -> list[Finding]:
    """Check one mesh file without raising.

    Args:
        path: PLY, OBJ, STL, ... file.
        unit: the unit the file is declared in ("mm" for BOP, "cm", "m").
        purpose: "render" (warn about missing colours and normals) or "eval" (geometry only, as for BOP
            ``models_eval`` meshes).

    Returns:
        Findings: errors for a missing or corrupt file, no vertices or faces, NaN/inf vertices, bad face indices,
        all faces degenerate, a size implausible for ``unit``; warnings for missing colours or normals and huge
        vertex counts; infos for zero-area faces and non-watertight meshes. Empty when all is well.
    """
    return inspect_mesh(path, unit, purpose)[0]


def mesh_files(folder: Path) -> dict[int, Path]:
    """``{obj_id: path}`` of the ``obj_<id>.<mesh suffix>`` files of a folder (first file per id by name; see
    :func:`iterpose.mesh.io.mesh_files_by_id` for all of them)."""
    return {oid: paths[0] for oid, paths in mesh_files_by_id(folder).items()}


def _check_symmetries(info: ModelInfo, where: str) -> list[Finding]:
    findings = []
    for i, m in enumerate(info.symmetries_discrete):
        r = m[:3, :3]
        orth = float(np.abs(r @ r.T - np.eye(3)).max())
        if orth > 1e-2 or not np.allclose(m[3], [0, 0, 0, 1]) or np.linalg.det(r) < 0:
            findings.append(
                Finding(
                    "error",
                    f"{where}.symmetries_discrete[{i}]",
                    f"not a rigid transform [R t; 0 0 0 1] (|R R^T - I| = {orth:.3g}, det R = "
                    f"{np.linalg.det(r):.3g}, last row {m[3].tolist()}); give 16 row-major floats",
                )
            )
    return findings


def check_models_dir(
    folder: str | Path,
    unit: str = "mm",
    purpose: Purpose = "render",
    require_info: bool = False,
    label: str | None = None,
    obj_ids_required: set[int] | None = None,
) -> tuple[list[Finding], set[int]]:
    """Check a folder of ``obj_<id>`` meshes and its ``models_info.json``.

    Args:
        folder: e.g. a BOP ``models/`` or ``models_eval/`` folder.
        unit: the files' unit.
        purpose: "render" or "eval", see :func:`check_mesh`.
        require_info: a missing ``models_info.json`` is an error (BOP datasets) rather than an info.
        label: how to name the folder in findings (default: the path).
        obj_ids_required: ids that must have a mesh here (e.g. ids used in ground truth).

    Returns:
        ``(findings, obj_ids)``: the findings and the ids that have a mesh file.
    """
    folder = Path(folder)
    label = str(folder) if label is None else label
    if not folder.is_dir():
        return [Finding("error", label, "folder does not exist")], set()
    all_files = mesh_files_by_id(folder)
    files = {oid: paths[0] for oid, paths in all_files.items()}
    findings: list[Finding] = []
    for oid, paths in all_files.items():
        if len(paths) > 1:
            findings.append(
                Finding(
                    "error",
                    label,
                    f"obj_id {oid} has {len(paths)} mesh files ({', '.join(p.name for p in paths)}); loading refuses "
                    f"this: keep one",
                )
            )
    if not files:
        findings.append(
            Finding(
                "error",
                label,
                f"no mesh named obj_<id> with suffix {'/'.join(MESH_SUFFIXES)} (BOP: obj_000001.ply)",
            )
        )
    info_path = folder / "models_info.json"
    infos: dict[int, ModelInfo] | None = None
    if info_path.is_file():
        try:
            infos = load_models_info(info_path)
        except IterposeError as exc:
            findings.append(
                Finding("error", f"{label}/models_info.json", str(exc).replace(f"{info_path}", "").strip(": ")),
            )
    elif require_info:
        findings.append(
            Finding(
                "error",
                f"{label}/models_info.json",
                "missing: BOP datasets need it for diameters and symmetries (evaluation); write it with "
                "iterpose.mesh.save_models_info(path, {id: compute_model_info(obj)})",
            )
        )
    else:
        findings.append(
            Finding("info", label, "no models_info.json: diameters are computed from the meshes, no symmetries known")
        )
    if infos is not None:
        for oid, info in infos.items():
            findings += _check_symmetries(info, f"{label}/models_info.json[{oid}]")
        if missing := sorted(set(files) - set(infos)):
            findings.append(
                Finding("error", f"{label}/models_info.json", f"no entry for obj_id {missing}: add diameter and bbox")
            )
        if extra := sorted(set(infos) - set(files)):
            findings.append(Finding("warning", f"{label}/models_info.json", f"entries without a mesh file: {extra}"))
    if obj_ids_required and (missing := sorted(obj_ids_required - set(files))):
        findings.append(Finding("error", label, f"no mesh for obj_id {missing}, used by the dataset"))
    for oid, path in files.items():
        where = f"{label}/{path.name}"
        mesh_findings, diameter = inspect_mesh(path, unit, purpose, where=where)
        findings += mesh_findings
        if infos is not None and oid in infos and diameter is not None:
            ref = infos[oid].diameter_mm
            if abs(diameter - ref) > DIAMETER_RTOL[purpose] * ref:
                findings.append(
                    Finding(
                        "warning",
                        where,
                        f"diameter of the vertices is {diameter:.6g} but models_info.json says {ref:.6g} "
                        f"(same unit, off by more than {DIAMETER_RTOL[purpose]:.0%}); regenerate models_info.json "
                        f"or check the file's unit",
                    )
                )
    return findings, set(files)
