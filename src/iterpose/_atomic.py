"""Atomic file writes (a temporary file in the same folder, then ``os.replace``): a reader never sees half a file,
and a crash leaves the previous file. Used by every writer of every layer (BOP files, results CSVs, PLY meshes)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from iterpose.errors import MissingFileError

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Raises:
        MissingFileError: the destination folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise MissingFileError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    """:func:`atomic_write_bytes` of UTF-8 text (``"\\n"`` line ends kept as is)."""
    return atomic_write_bytes(path, text.encode("utf-8"))
