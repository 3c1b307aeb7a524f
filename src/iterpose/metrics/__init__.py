"""Pose-error metrics (BOP-exact NumPy in mm, batched torch in metres), matching, recall/AR and BOP19 evaluation."""

from iterpose.metrics.batched import add_m, adi_m, proj_px, re_deg, te_m
from iterpose.metrics.evaluate import EvalReport, evaluate
from iterpose.metrics.matching import match_greedy, select_valid_gts
from iterpose.metrics.pose_error import add, adi, mspd, mssd, proj, re, te, vsd
from iterpose.metrics.scores import average_recall, bop19_ar, recall

__all__ = [
    "evaluate", "EvalReport",
    "add", "adi", "proj", "re", "te", "mssd", "mspd", "vsd",
    "add_m", "adi_m", "proj_px", "re_deg", "te_m",
    "match_greedy", "select_valid_gts", "recall", "average_recall", "bop19_ar",
]
