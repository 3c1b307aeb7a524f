"""Pose-error metrics (BOP-exact NumPy in mm, batched torch in metres), matching, recall/AR and BOP19 evaluation."""

from iterpose.metrics.batched import add_m, adi_m, proj_px, re_deg, te_m
from iterpose.metrics.evaluate import EvalReport, evaluate
from iterpose.metrics.matching import match_greedy, select_valid_gts
from iterpose.metrics.adi_fast import adi_for_matching, build_adi_index
from iterpose.metrics.pose_error import add, adi, mspd, mssd, proj, re, te, vsd, vsd_from_depths
from iterpose.metrics.scores import average_recall, bop19_ar, recall
from iterpose.metrics.vsd_eval import bop_depth_renderer, vsd_errors

__all__ = [
    "evaluate", "EvalReport",
    "add", "adi", "proj", "re", "te", "mssd", "mspd", "vsd", "vsd_from_depths",
    "vsd_errors", "bop_depth_renderer", "build_adi_index", "adi_for_matching",
    "add_m", "adi_m", "proj_px", "re_deg", "te_m",
    "match_greedy", "select_valid_gts", "recall", "average_recall", "bop19_ar",
]
