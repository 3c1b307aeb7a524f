"""Data I/O: BOP datasets (read and write), BOP results CSV, unit conversion at the BOP boundary.

BOP files are in millimetres; these readers keep BOP's float64 millimetre values (for bit-exact evaluation)
and convert to iterpose's ``T_co`` (metres) through :mod:`iterpose.data.units` only.
"""

from __future__ import annotations

from iterpose.data.bop import BopDataset, CameraInfo, GtInfo, GtInstance, Target, gt_T_co, load_json
from iterpose.data.bop_writer import (
    format_json,
    save_camera,
    save_depth_mm,
    save_json,
    save_mask,
    save_rgb,
    save_scene_camera,
    save_scene_gt,
    save_scene_gt_info,
    save_targets,
)
from iterpose.data.results_csv import (
    RESULTS_HEADER,
    ResultFilename,
    ResultRow,
    ResultsTable,
    parse_result_filename,
    read_results_csv,
    write_results_csv,
)
from iterpose.data.units import MM_PER_M, Rt_mm_to_T_co, T_co_to_Rt_mm

__all__ = [
    "BopDataset",
    "CameraInfo",
    "GtInstance",
    "GtInfo",
    "Target",
    "gt_T_co",
    "load_json",
    "format_json",
    "save_json",
    "save_camera",
    "save_scene_camera",
    "save_scene_gt",
    "save_scene_gt_info",
    "save_targets",
    "save_rgb",
    "save_depth_mm",
    "save_mask",
    "RESULTS_HEADER",
    "ResultRow",
    "ResultsTable",
    "ResultFilename",
    "read_results_csv",
    "write_results_csv",
    "parse_result_filename",
    "MM_PER_M",
    "Rt_mm_to_T_co",
    "T_co_to_Rt_mm",
]

# Synthetic data (iterpose.data.synth, synth_dataset, synth_writer): imported on first use, so that
# `import iterpose.data` does not load the renderer and numba.
_SYNTH_EXPORTS = {
    "SynthConfig": "iterpose.data.synth",
    "SynthScene": "iterpose.data.synth",
    "generate_scene": "iterpose.data.synth",
    "scene_rng": "iterpose.data.synth",
    "SynthPoseDataset": "iterpose.data.synth_dataset",
    "write_synth_dataset": "iterpose.data.synth_writer",
    "SynthWriteReport": "iterpose.data.synth_writer",
}
__all__ += list(_SYNTH_EXPORTS)


def __getattr__(name: str):
    if name in _SYNTH_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_SYNTH_EXPORTS[name]), name)
    raise AttributeError(f"module 'iterpose.data' has no attribute {name!r}")
