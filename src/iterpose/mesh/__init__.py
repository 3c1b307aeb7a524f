"""Object models: :class:`ObjectModel` (metres), mesh loaders, BOP ``models_info.json``, a generated example
object and mesh validation."""

from iterpose.mesh.checks import Finding, check_mesh, check_models_dir
from iterpose.mesh.example import example_object
from iterpose.mesh.io import load_mesh, load_objects, load_points_mm
from iterpose.mesh.model import ContinuousSymmetry, ObjectModel
from iterpose.mesh.models_info import (
    ModelInfo,
    compute_model_info,
    load_models_info,
    pts_diameter,
    save_models_info,
)

__all__ = [
    "ObjectModel",
    "ContinuousSymmetry",
    "load_mesh",
    "load_objects",
    "load_points_mm",
    "ModelInfo",
    "load_models_info",
    "save_models_info",
    "compute_model_info",
    "pts_diameter",
    "example_object",
    "Finding",
    "check_mesh",
    "check_models_dir",
]
