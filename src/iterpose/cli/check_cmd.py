"""``iterpose check PATH``: validate a mesh file, a folder of meshes or a BOP dataset, one line per finding.

Exit status 0 when there is no error (warnings and infos allowed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover (imported in check_path: the mesh checks import torch and trimesh)
    from iterpose.mesh.checks import Finding

__all__ = ["add_parser", "run", "check_path"]


def _is_bop_root(folder: Path, split: str) -> bool:
    return (
        (folder / "models").is_dir()
        or (folder / split).is_dir()
        or any(folder.glob("camera*.json"))
        or any(folder.glob("*_targets_bop*.json"))
    )


def check_path(path: str | Path, unit: str = "mm", split: str = "test") -> tuple[str, list[Finding]]:
    """Check whatever ``path`` is. Returns ``(kind, findings)``, kind in {"mesh", "models folder", "meshes folder",
    "BOP dataset", "missing"}."""
    from iterpose.data.checks import check_dataset
    from iterpose.mesh.checks import Finding, check_mesh, check_models_dir, mesh_files
    from iterpose.mesh.io import MESH_SUFFIXES

    path = Path(path)
    if path.is_file():
        return "mesh", check_mesh(path, unit=unit)
    if not path.is_dir():
        return "missing", [Finding("error", str(path), "no such file or folder")]
    if _is_bop_root(path, split):
        return "BOP dataset", check_dataset(path, split=split, unit=unit)
    if mesh_files(path):
        purpose = "eval" if path.name == "models_eval" else "render"
        return "models folder", check_models_dir(path, unit=unit, purpose=purpose)[0]
    meshes = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
    if not meshes:
        return "meshes folder", [
            Finding("error", str(path), "neither a BOP dataset (models/, test/, ...) nor a folder with mesh files")
        ]
    findings: list[Finding] = []
    for p in meshes:
        findings += check_mesh(p, unit=unit)
    return "meshes folder", findings


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    kind, findings = check_path(args.path, unit=args.unit, split=args.split)
    for f in findings:
        print(f)
    n = {level: sum(f.level == level for f in findings) for level in ("error", "warning", "info")}
    verdict = "OK" if n["error"] == 0 else "FAILED"
    print(
        f"{verdict}: {args.path} ({kind}): {n['error']} error(s), {n['warning']} warning(s), {n['info']} note(s) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0 if n["error"] == 0 else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "check",
        help="validate a mesh, a folder of meshes or a BOP dataset",
        description="Validate a mesh file, a folder of obj_*.ply meshes or a BOP dataset root. Prints one line per "
        "finding (ERROR / WARNING / INFO) and a summary; exits 1 if there is any error.",
    )
    p.add_argument("path", help="mesh file, models folder or BOP dataset root")
    p.add_argument("--unit", choices=("mm", "cm", "m"), default="mm", help="unit of the mesh files (BOP: mm)")
    p.add_argument("--split", default="test", help="split folder of a BOP dataset to check (default: test)")
    p.set_defaults(func=run)
    return p
