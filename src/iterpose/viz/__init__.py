"""Pictures: pose overlays (contours on the image) and strips of refinement iterations."""

from iterpose.viz.overlay import POSE_COLORS, ContourLayer, draw_contours, save_png, to_uint8_hwc
from iterpose.viz.refinement import PoseSet, iteration_strip, pose_masks, pose_overlay, refinement_overlay

__all__ = [
    "POSE_COLORS",
    "ContourLayer",
    "draw_contours",
    "save_png",
    "to_uint8_hwc",
    "PoseSet",
    "pose_masks",
    "pose_overlay",
    "refinement_overlay",
    "iteration_strip",
]
