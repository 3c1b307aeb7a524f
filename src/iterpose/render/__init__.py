"""Rendering: a few sharp primitives (``rasterize`` -> ``interpolate`` -> ``shade``) and scene helpers.

Conventions are stated once in :mod:`iterpose.render.raster` (pixel centres, edge tie rule, near plane, depth).
"""

from iterpose.render.interpolate import interpolate
from iterpose.render.raster import Raster, rasterize
from iterpose.render.reference import rasterize_reference  # noqa: F401 (the tests' oracle; not in __all__)
from iterpose.render.scene import (
    ObjectRender,
    SceneRender,
    render_depth,
    render_objects,
    render_scene,
    vertex_normals,
)
from iterpose.render.shade import shade

__all__ = [
    "Raster",
    "rasterize",
    "interpolate",
    "shade",
    "ObjectRender",
    "SceneRender",
    "render_objects",
    "render_scene",
    "render_depth",
    "vertex_normals",
]
