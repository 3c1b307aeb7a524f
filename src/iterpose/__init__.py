"""iterpose: 6D object pose refinement by iterative render-and-compare.

The public surface is small on purpose::

    import iterpose
    objects = iterpose.load_objects("lmo/models")   # dict obj_id -> ObjectModel (mm on disk -> metres)
"""

from __future__ import annotations

import os

# OpenMP threads (torch, numba) spin while waiting by default; on a shared or busy machine that made 2-thread
# rendering up to 20x slower and erratic (measured, benchmarks/results/render.json). Passive waiting costs
# little on an idle machine. Only a default: set OMP_WAIT_POLICY yourself (before importing torch) to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["__version__", "load_objects", "ObjectModel", "errors"]

from iterpose import errors
from iterpose.mesh.model import ObjectModel


def load_objects(models_dir, unit: str = "mm", obj_ids=None):
    """Load every ``obj_XXXXXX.ply`` of a folder; see :func:`iterpose.mesh.load_objects`."""
    from iterpose.mesh import load_objects as _load_objects

    return _load_objects(models_dir, unit=unit, obj_ids=obj_ids)
