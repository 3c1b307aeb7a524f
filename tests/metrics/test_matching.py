"""Greedy matching, valid-GT selection, recall/AR edge cases (strict thresholds, ties)."""

from __future__ import annotations

import numpy as np
import pytest

from iterpose.errors import ShapeError
from iterpose.metrics.matching import match_greedy, order_by_score, select_valid_gts
from iterpose.metrics.scores import average_recall, bop19_ar, recall


def test_order_by_score_is_stable_on_ties():
    assert order_by_score([0.5, 1.0, 0.5, 1.0]) == [1, 3, 0, 2]


def test_threshold_is_strict():
    assert match_greedy([1.0], np.array([[0.1]]), [0.1]) == [-1]
    assert match_greedy([1.0], np.array([[np.nextafter(0.1, 0)]]), [0.1]) == [0]


def test_highest_score_matches_first_and_one_to_one():
    # Two estimates, one GT: the higher score takes it even with a larger error.
    assert match_greedy([0.2, 0.9], np.array([[0.01], [0.05]]), [0.1]) == [-1, 0]


def test_smallest_error_gt_and_tie_goes_to_lower_gt_id():
    assert match_greedy([1.0], np.array([[0.05, 0.02, 0.03]]), [0.1]) == [1]
    assert match_greedy([1.0], np.array([[0.05, 0.05]]), [0.1]) == [0]


def test_equal_scores_keep_input_order():
    # Both estimates want GT 0; the first listed wins the tie on score.
    assert match_greedy([1.0, 1.0], np.array([[0.05, 0.5], [0.01, 0.06]]), [0.1]) == [0, 1]


def test_invalid_gt_is_never_matched():
    assert match_greedy([1.0], np.array([[0.01, 0.05]]), [0.1], gt_valid=[False, True]) == [1]


def test_two_element_error_requires_both_strictly_below():
    err = np.array([[[4.0, 60.0], [6.0, 10.0], [4.9, 49.9]]])
    assert match_greedy([1.0], err, [5.0, 50.0]) == [2]
    # both elements must improve on the best so far: GT 1 (3, 45) is not better than GT 0 (2, 40) on re
    err2 = np.array([[[2.0, 40.0], [3.0, 30.0]]])
    assert match_greedy([1.0], err2, [5.0, 50.0]) == [0]


def test_match_greedy_shape_error():
    with pytest.raises(ShapeError, match="E = 2 estimates"):
        match_greedy([1.0, 2.0], np.zeros((3, 1)), [0.1])


def test_select_valid_gts_by_visibility_and_inst_count():
    # objects: 1, 1, 2, 3 ; inst_count 1 for obj 1 and 2, obj 3 has no target.
    valid = select_valid_gts([1, 1, 2, 3], [0.3, 0.8, 0.05, 1.0], {1: 1, 2: 1})
    assert valid == [False, True, True, False]
    # ties in visib_fract: the earlier gt_id is taken
    assert select_valid_gts([1, 1], [0.5, 0.5], {1: 1}) == [True, False]
    assert select_valid_gts([1, 1], [0.5, 0.5], {1: 5}) == [True, True]


def test_recall_and_ar():
    assert recall(3, 4) == 0.75
    assert recall(0, 0) == 0.0
    assert average_recall([0.1, 0.2, 0.6]) == pytest.approx(0.3)
    assert average_recall([]) == 0.0
    assert bop19_ar(0.3, 0.6, 0.9) == pytest.approx(0.6)
