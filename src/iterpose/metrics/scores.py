"""Recall and Average Recall as in bop_toolkit (``score.calc_localization_scores``, ``eval_bop19_pose.py``).

* recall = true positives / targets, **pooled** over all targets (not a mean over objects); 0 when no targets.
* AR of one error type = the mean of the recalls at its thresholds (BOP19: 10 thresholds for MSSD and MSPD,
  10 x 10 (tau, theta) pairs for VSD); the BOP19 score AR = (AR_VSD + AR_MSSD + AR_MSPD) / 3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["recall", "average_recall", "bop19_ar"]


def recall(tp_count: int, targets_count: int) -> float:
    """``tp_count / targets_count`` as a float, 0.0 when there are no targets (bop's ``calc_recall``)."""
    if targets_count == 0:
        return 0.0
    return tp_count / float(targets_count)


def average_recall(recalls: Sequence[float]) -> float:
    """Mean of ``recalls`` (``np.mean``, as bop_toolkit); 0.0 for an empty sequence."""
    if len(recalls) == 0:
        return 0.0
    return float(np.mean(recalls))


def bop19_ar(ar_vsd: float, ar_mssd: float, ar_mspd: float) -> float:
    """BOP19 Average Recall ``mean(AR_VSD, AR_MSSD, AR_MSPD)``."""
    return float(np.mean([ar_vsd, ar_mssd, ar_mspd]))
