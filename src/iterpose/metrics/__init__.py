"""Pose-error metrics (BOP-exact NumPy in mm, batched torch in metres), matching, recall/AR and BOP19 evaluation.

Torch is imported only by the batched metrics in metres (``add_m``, ...) and by VSD's renderer, on first use:
``import iterpose.metrics`` and :func:`evaluate` on a dataset without depth need only NumPy and SciPy.

``evaluate``/``EvalReport`` are imported eagerly because ``evaluate`` is also the name of a submodule: importing
``iterpose.metrics.evaluate`` binds the package attribute to that module, which an eager ``from ... import
evaluate`` here rebinds to the function once and for all. The other names are imported on first use (PEP 562).
"""

from __future__ import annotations

from iterpose._lazy import lazy_exports


from iterpose.metrics.evaluate import EvalReport, evaluate

#: public name -> submodule that defines it (imported on first use)
_EXPORTS = {
    "add": "pose_error", "adi": "pose_error", "proj": "pose_error", "re": "pose_error", "te": "pose_error",
    "mssd": "pose_error", "mspd": "pose_error", "vsd": "pose_error", "vsd_from_depths": "pose_error",
    "vsd_errors": "vsd_eval", "bop_depth_renderer": "vsd_eval",
    "build_adi_index": "adi_fast", "adi_for_matching": "adi_fast",
    "add_m": "batched", "adi_m": "batched", "proj_px": "batched", "re_deg": "batched", "te_m": "batched",
    "match_greedy": "matching", "select_valid_gts": "matching",
    "recall": "scores", "average_recall": "scores", "bop19_ar": "scores",
}  # fmt: skip

__all__ = ["evaluate", "EvalReport", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
