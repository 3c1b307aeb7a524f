"""BOP19 matching of pose estimates to ground-truth instances (bop_toolkit ``pose_matching.py`` and the
valid-GT rule of ``scripts/eval_calc_scores.py``), for one image and one object at a time.

Rules reproduced exactly:

* **Valid GTs** (:func:`select_valid_gts`): the GT instances of an image are sorted by ``visib_fract``
  descending (stable: ties keep the file order); walking that order, an instance of an object that has a target
  in the image is valid while fewer than ``inst_count`` instances of that object have been taken.
* **Greedy matching** (:func:`match_greedy`): estimates in decreasing score (stable: ties keep the given order);
  each takes, among the valid and still unmatched GTs in ``gt_id`` order, the one whose error is the smallest;
  a GT replaces the current best only when **every** error element is **strictly smaller** than the best so far,
  starting from the thresholds (so only errors strictly below the thresholds can match, and on ties the lower
  ``gt_id`` wins). One-to-one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from iterpose.errors import InvalidInputError, ShapeError

__all__ = ["select_valid_gts", "match_greedy", "order_by_score"]


def order_by_score(scores: Sequence[float]) -> list[int]:
    """Indices of ``scores`` sorted by decreasing score; ties keep their original order (Python's stable sort,
    as bop_toolkit's ``sorted(..., key=score, reverse=True)``)."""
    return sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)


def select_valid_gts(
    gt_obj_ids: Sequence[int], visib_fracts: Sequence[float], inst_counts: Mapping[int, int]
) -> list[bool]:
    """Which GT instances of one image count as targets (BOP19, ``visib_gt_min = -1``).

    Args:
        gt_obj_ids: ``[G]`` object id of each GT instance, in ``gt_id`` order (``scene_gt.json`` order).
        visib_fracts: ``[G]`` visible fraction of each instance (``scene_gt_info.json``).
        inst_counts: ``{obj_id: inst_count}`` of the image's targets (objects without a target have no valid GT).

    Returns:
        ``[G]`` list of bools, True for valid GT instances.
    """
    if len(gt_obj_ids) != len(visib_fracts):
        raise ShapeError(
            f"select_valid_gts: gt_obj_ids and visib_fracts must have the same length, got {len(gt_obj_ids)} "
            f"and {len(visib_fracts)} (scene_gt.json and scene_gt_info.json disagree?)"
        )
    order = sorted(range(len(gt_obj_ids)), key=lambda g: visib_fracts[g], reverse=True)
    to_add = dict(inst_counts)
    valid = [False] * len(gt_obj_ids)
    for g in order:
        obj_id = gt_obj_ids[g]
        if obj_id in to_add and to_add[obj_id] > 0:
            valid[g] = True
            to_add[obj_id] -= 1
    return valid


def match_greedy(
    scores: Sequence[float],
    errors: np.ndarray,
    thresholds: Sequence[float],
    gt_valid: Sequence[bool] | None = None,
) -> list[int]:
    """Greedy one-to-one matching of ``E`` estimates to ``G`` GT instances of one object in one image.

    Args:
        scores: ``[E]`` confidence of each estimate (higher first).
        errors: ``[E, G]`` or ``[E, G, C]`` float errors of each estimate w.r.t. each GT (``C`` elements per error,
            e.g. ``C = 2`` for (re, te)), in the unit of ``thresholds``; ``inf`` for "no match possible".
        thresholds: ``[C]`` correctness thresholds; an error matches only if every element is strictly below.
        gt_valid: ``[G]`` which GTs may be matched (default all).

    Returns:
        ``[E]`` the matched ``gt`` index (0..G-1) of each estimate, in the given estimate order, or -1.
    """
    err = np.asarray(errors, dtype=np.float64)
    th = [float(x) for x in np.atleast_1d(np.asarray(thresholds, dtype=np.float64))]
    if err.ndim == 2:
        err = err[:, :, None]
    if err.ndim != 3 or err.shape[0] != len(scores) or err.shape[2] != len(th):
        raise ShapeError(
            f"match_greedy: errors must be [E, G] or [E, G, C] with E = {len(scores)} estimates and C = {len(th)} "
            f"thresholds, got shape {list(np.shape(errors))}"
        )
    n_gt = err.shape[1]
    if gt_valid is None:
        gt_valid = [True] * n_gt
    elif len(gt_valid) != n_gt:
        raise InvalidInputError(f"match_greedy: gt_valid must have G = {n_gt} entries, got {len(gt_valid)}")
    matched = [-1] * len(scores)
    gt_taken = [False] * n_gt
    rows = err.tolist()
    for e in order_by_score(scores):
        best_gt = -1
        best = th
        for g in range(n_gt):
            if not gt_valid[g] or gt_taken[g]:
                continue
            cand = rows[e][g]
            if all(cand[c] < best[c] for c in range(len(th))):
                best_gt = g
                best = cand
        if best_gt >= 0:
            gt_taken[best_gt] = True
            matched[e] = best_gt
    return matched
