"""Rendering: a few sharp primitives (``rasterize`` -> ``interpolate`` -> ``shade``) and scene helpers."""

from iterpose.render.raster import Raster, rasterize
from iterpose.render.reference import rasterize_reference

__all__ = ["Raster", "rasterize", "rasterize_reference"]
