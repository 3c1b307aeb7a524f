"""Pictures: pose overlays (contours on the image)."""

from iterpose.viz.overlay import POSE_COLORS, ContourLayer, draw_contours, save_png, to_uint8_hwc

__all__ = ["POSE_COLORS", "ContourLayer", "draw_contours", "save_png", "to_uint8_hwc"]
