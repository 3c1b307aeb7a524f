"""Raw vertex coordinates of a PLY file, exactly as bop_toolkit reads them, for BOP evaluation.

NumPy only (no torch, no trimesh), so that ``iterpose eval`` starts fast. :func:`load_points_mm` is also available
as ``iterpose.mesh.io.load_points_mm`` and ``iterpose.mesh.load_points_mm``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iterpose.errors import DataFormatError, MissingFileError

__all__ = ["load_points_mm"]

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}  # fmt: skip


def load_points_mm(path: str | Path) -> np.ndarray:
    """Vertex coordinates of a PLY file exactly as bop_toolkit ``inout.load_ply`` returns them in ``pts``.

    Used for BOP evaluation (ADD, MSSD, ... on ``models_eval`` vertices). No unit conversion: the values are in the
    file's unit (mm for BOP). Binary float32 values are widened to float64 exactly; ASCII values are parsed from
    the text directly as float64 (not through float32), like bop_toolkit.

    Args:
        path: an ASCII or binary (little or big endian) PLY file with ``x``, ``y``, ``z`` vertex properties.

    Returns:
        ``[N, 3]`` float64 array, the file's unit.

    Raises:
        MissingFileError: no such file.
        DataFormatError: not a PLY file, truncated data, or no x/y/z vertex properties.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"load_points_mm: {path} does not exist")
    with open(path, "rb") as fh:
        data = fh.read()
    fail = lambda why: DataFormatError(f"load_points_mm: {path}: {why}")  # noqa: E731
    if not data.startswith(b"ply"):
        raise fail("not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header")
    if end < 0:
        raise fail("PLY header has no 'end_header' line")
    body_start = data.find(b"\n", end) + 1
    header = data[:end].decode("ascii", errors="replace").splitlines()
    fmt, elements = None, []  # elements: [name, count, [(prop, type, list_types|None)]]
    for line in header:
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "format" and len(tok) >= 2:
            fmt = tok[1]
        elif tok[0] == "element" and len(tok) == 3:
            elements.append([tok[1], int(tok[2]), []])
        elif tok[0] == "property" and elements:
            if tok[1] == "list" and len(tok) == 5:
                elements[-1][2].append((tok[4], tok[3], tok[2]))
            elif len(tok) == 3:
                elements[-1][2].append((tok[2], tok[1], None))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise fail(f"unsupported PLY format {fmt!r}")
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise fail("no 'element vertex' in the header")
    vi = names.index("vertex")
    _, n_pts, props = elements[vi]
    prop_names = [p[0] for p in props]
    if not {"x", "y", "z"} <= set(prop_names) or any(p[2] is not None for p in props):
        raise fail("the vertex element needs scalar x, y, z properties")
    if fmt == "ascii":
        lines = data[body_start:].split(b"\n")
        skip = sum(e[1] for e in elements[:vi])
        rows = lines[skip : skip + n_pts]
        try:
            cols = [prop_names.index(c) for c in ("x", "y", "z")]
            pts = np.array([[float(r.split()[c]) for c in cols] for r in rows], dtype=np.float64).reshape(-1, 3)
        except (ValueError, IndexError):
            raise fail("malformed ASCII vertex line") from None
        if pts.shape[0] != n_pts:
            raise fail(f"header declares {n_pts} vertices but the file has {pts.shape[0]}")
        return pts
    if any(e[2] and any(p[2] is not None for p in e[2]) for e in elements[:vi]):
        raise fail("binary PLY with a list element before the vertices is not supported")
    try:
        order = "<" if fmt == "binary_little_endian" else ">"
        offset = body_start
        for e in elements[:vi]:
            offset += e[1] * np.dtype([(p[0], order + _PLY_TYPES[p[1]]) for p in e[2]]).itemsize
        dt = np.dtype([(p[0], order + _PLY_TYPES[p[1]]) for p in props])
    except KeyError as exc:
        raise fail(f"unknown PLY property type {exc}") from None
    if len(data) < offset + n_pts * dt.itemsize:
        raise fail(f"file is truncated: {n_pts} vertices declared, data ends early")
    arr = np.frombuffer(data, dtype=dt, count=n_pts, offset=offset)
    return np.stack([arr[c].astype(np.float64) for c in ("x", "y", "z")], axis=1)
