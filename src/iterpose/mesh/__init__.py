"""Object models: :class:`ObjectModel` (metres), mesh loaders, BOP ``models_info.json``, a generated example
object and mesh validation.

The names below are imported on first use (PEP 562): ``import iterpose.mesh.models_info`` or
``iterpose.mesh.ply_points`` (BOP evaluation, NumPy only) does not import torch or trimesh.
"""

from __future__ import annotations

from iterpose._lazy import lazy_exports


#: public name -> submodule that defines it
_EXPORTS = {
    "ObjectModel": "model",
    "ContinuousSymmetry": "model",
    "vertex_normals": "model",
    "load_mesh": "io",
    "save_ply": "io",
    "load_objects": "io",
    "load_points_mm": "ply_points",
    "ModelInfo": "models_info",
    "load_models_info": "models_info",
    "save_models_info": "models_info",
    "compute_model_info": "models_info",
    "pts_diameter": "models_info",
    "example_object": "example",
    "Finding": "checks",
    "check_mesh": "checks",
    "check_models_dir": "checks",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
