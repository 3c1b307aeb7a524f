"""The one exception hierarchy of iterpose.

Every error raised because of a user's input derives from :class:`IterposeError`, so callers (and the CLI) can
catch it in one place. Messages say what was wrong, where (function, argument, file, key, object id) and how to
fix it.
"""

from __future__ import annotations

__all__ = [
    "IterposeError",
    "ShapeError",
    "InvalidInputError",
    "DataFormatError",
    "MissingFileError",
    "UnitError",
    "MeshError",
    "CameraError",
    "PoseError",
]


class IterposeError(Exception):
    """Base class of every error iterpose raises on bad input or bad data."""


class ShapeError(IterposeError, ValueError):
    """A tensor or array has the wrong shape, e.g. ``K`` that is not ``[B, 3, 3]``."""


class InvalidInputError(IterposeError, ValueError):
    """An argument has a value outside what the function accepts (NaN, a negative size, an unknown option)."""


class DataFormatError(IterposeError, ValueError):
    """A file exists but its content does not follow the expected format (corrupt PLY, bad CSV, bad JSON key)."""


class MissingFileError(IterposeError, FileNotFoundError):
    """A file or folder that a dataset or command needs does not exist."""


class UnitError(IterposeError, ValueError):
    """Values are very likely in the wrong unit (e.g. a mesh in metres declared as millimetres)."""


class MeshError(IterposeError, ValueError):
    """A mesh is empty, degenerate or otherwise unusable."""


class CameraError(IterposeError, ValueError):
    """An intrinsics matrix ``K`` is not a valid pinhole camera matrix."""


class PoseError(IterposeError, ValueError):
    """A pose is not a valid rigid transform (NaN, not a rotation, object behind the camera)."""
