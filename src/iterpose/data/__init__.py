"""Data I/O: BOP datasets (read and write), BOP results CSV, unit conversion at the BOP boundary, synthetic data.

BOP files are in millimetres; these readers keep BOP's float64 millimetre values (for bit-exact evaluation)
and convert to iterpose's ``T_co`` (metres) through :mod:`iterpose.data.units` only.

Every name below is imported on first use (PEP 562): ``import iterpose.data`` loads nothing heavy (no OpenCV, no
renderer, no numba, no torch); ``iterpose.data.read_results_csv`` loads only NumPy.
"""

from __future__ import annotations

from iterpose._lazy import lazy_exports


#: public name -> submodule that defines it
_EXPORTS = {
    # BOP reader
    "BopDataset": "bop", "CameraInfo": "bop", "GtInstance": "bop", "GtInfo": "bop", "Target": "bop",
    "gt_T_co": "bop", "load_json": "bop",
    # BOP writer
    "format_json": "bop_writer", "save_json": "bop_writer", "save_camera": "bop_writer",
    "save_scene_camera": "bop_writer", "save_scene_gt": "bop_writer", "save_scene_gt_info": "bop_writer",
    "save_targets": "bop_writer", "save_rgb": "bop_writer", "save_depth_mm": "bop_writer", "save_mask": "bop_writer",
    # results CSV
    "RESULTS_HEADER": "results_csv", "ResultRow": "results_csv", "ResultsTable": "results_csv",
    "ResultFilename": "results_csv", "read_results_csv": "results_csv", "write_results_csv": "results_csv",
    "parse_result_filename": "results_csv",
    # units
    "MM_PER_M": "units", "UNIT_TO_M": "units", "m_from_mm": "units", "mm_from_m": "units", "Rt_mm_to_T_co": "units", "T_co_to_Rt_mm": "units",
    # synthetic data (renderer, numba, torch)
    "SynthConfig": "synth", "SynthScene": "synth", "generate_scene": "synth", "scene_rng": "synth",
    "SynthPoseDataset": "synth_dataset",
    "write_synth_dataset": "synth_writer", "SynthWriteReport": "synth_writer",
}  # fmt: skip

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
