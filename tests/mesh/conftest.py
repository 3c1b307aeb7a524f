"""Helpers for the mesh tests: tiny PLY files written by hand (independently of iterpose's readers)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

# An asymmetric tetrahedron-like mesh (mm): 4 vertices, 4 outward faces, longest edge between v1 and v3.
TET_V_MM = np.array([[0.0, 0.0, 0.0], [40.1, 0.0, 0.0], [0.0, 25.3, 0.0], [3.7, 5.1, 31.9]])
TET_F = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
TET_RGB = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
TET_N = np.array([[-1.0, -1.0, -1.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]])


def write_ply(
    path: Path,
    v: np.ndarray,
    f: np.ndarray,
    *,
    binary: bool = False,
    rgb: np.ndarray | None = None,
    normals: np.ndarray | None = None,
    alpha: bool = False,
    vertex_text: list[str] | None = None,
) -> Path:
    """Write a PLY (ASCII, or binary little endian with float32 coordinates). ``vertex_text`` overrides the ASCII
    vertex lines (to control the exact decimal text)."""
    props = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals is not None else [])
    head = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", "comment test",
            f"element vertex {len(v)}"] + [f"property float {p}" for p in props]  # fmt: skip
    if rgb is not None:
        head += ["property uchar red", "property uchar green", "property uchar blue"] + (
            ["property uchar alpha"] if alpha else []
        )
    head += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    out = ("\n".join(head) + "\n").encode()
    for i in range(len(v)):
        vals = list(v[i]) + (list(normals[i]) if normals is not None else [])
        cols = [] if rgb is None else list(rgb[i]) + ([255] if alpha else [])
        if binary:
            out += struct.pack(f"<{len(vals)}f", *vals) + struct.pack(f"<{len(cols)}B", *cols)
        elif vertex_text is not None:
            out += (vertex_text[i] + "\n").encode()
        else:
            out += (" ".join(repr(float(x)) for x in vals) + "".join(f" {int(c)}" for c in cols) + "\n").encode()
    for face in f:
        if binary:
            out += struct.pack("<B3i", 3, *[int(i) for i in face])
        else:
            out += f"3 {face[0]} {face[1]} {face[2]}\n".encode()
    path.write_bytes(out)
    return path


@pytest.fixture
def tet_ascii(tmp_path) -> Path:
    """ASCII PLY with colours and normals, in mm."""
    return write_ply(tmp_path / "obj_000007.ply", TET_V_MM, TET_F, rgb=TET_RGB, normals=TET_N)


@pytest.fixture
def tet_binary(tmp_path) -> Path:
    """Binary PLY, xyz only, in mm."""
    return write_ply(tmp_path / "obj_000003.ply", TET_V_MM, TET_F, binary=True)


class _Tet:
    v_mm = TET_V_MM
    f = TET_F
    rgb = TET_RGB
    normals = TET_N
    write_ply = staticmethod(write_ply)


@pytest.fixture
def tet() -> type[_Tet]:
    """The test tetrahedron's arrays and the PLY writer, for tests (conftest is not importable under importlib)."""
    return _Tet
