"""iterpose: 6D object pose refinement by iterative render-and-compare.

The public surface is small on purpose::

    import iterpose
    objects = iterpose.load_objects("lmo/models")   # dict obj_id -> ObjectModel (mm on disk -> metres)

``import iterpose`` is light: torch is imported on first use of a name that needs it (``ObjectModel``,
``load_objects``), so that e.g. ``iterpose eval`` (NumPy only) starts fast.
"""

from __future__ import annotations

import os

# OpenMP threads (torch, numba) spin while waiting by default; on a shared or busy machine that made 2-thread
# rendering up to 20x slower and erratic (measured, benchmarks/results/render.json). Passive waiting costs
# little on an idle machine. Only a default: set OMP_WAIT_POLICY yourself (before importing torch) to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["__version__", "load_objects", "load_refiner", "ObjectModel", "errors"]

from iterpose import errors  # noqa: E402 (after the environment default above)


def load_objects(models_dir, unit: str = "mm", obj_ids=None):
    """Load every ``obj_XXXXXX.ply`` of a folder; see :func:`iterpose.mesh.load_objects`."""
    from iterpose.mesh.io import load_objects as _load_objects  # noqa: PLC0415 (imports torch)

    return _load_objects(models_dir, unit=unit, obj_ids=obj_ids)


def load_refiner(path, objects=None, *, method=None, device="cpu"):
    """Load a trained refiner from its weights file; see :func:`iterpose.refiners.load_refiner`."""
    from iterpose.refiners.loading import load_refiner as _load_refiner  # noqa: PLC0415 (imports torch)

    return _load_refiner(path, objects, method=method, device=device)


#: sub-packages reachable as attributes (``iterpose.mesh``) without an explicit import, imported on first use
_SUBPACKAGES = ("geometry", "mesh", "render", "data", "metrics", "refiners", "train", "viz", "cli", "demo")


def __getattr__(name: str):
    if name == "ObjectModel":  # imports torch: on first use only
        from iterpose.mesh.model import ObjectModel  # noqa: PLC0415

        globals()[name] = ObjectModel
        return ObjectModel
    if name in _SUBPACKAGES:
        import importlib  # noqa: PLC0415

        return importlib.import_module(f"iterpose.{name}")
    raise AttributeError(f"module 'iterpose' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
