"""mm <-> m pose conversion at the BOP boundary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iterpose.data import Rt_mm_to_T_co, T_co_to_Rt_mm
from iterpose.errors import ShapeError


def test_known_value_and_layout():
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t_mm = [161.68945982, -113.74032768, 1112.83112737]
    T = Rt_mm_to_T_co(R, t_mm)
    assert T.dtype == np.float64 and T.shape == (4, 4)
    assert np.array_equal(T[:3, :3], R)
    assert T[:3, 3].tolist() == [v / 1000.0 for v in t_mm]  # one correctly rounded division, nothing else
    assert np.allclose(T[:3, 3], [0.16168945982, -0.11374032768, 1.11283112737], rtol=1e-15, atol=0)
    assert T[3].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_batched_and_column_t_and_tensor_input():
    rng = np.random.default_rng(0)
    R = rng.standard_normal((2, 5, 3, 3))
    t = rng.standard_normal((2, 5, 3, 1)) * 1000
    T = Rt_mm_to_T_co(torch.from_numpy(R), torch.from_numpy(t))
    assert T.shape == (2, 5, 4, 4)
    assert np.array_equal(T[1, 3, :3, 3], t[1, 3, :, 0] / 1000.0)
    R2, t2 = T_co_to_Rt_mm(T)
    assert np.array_equal(R2, R) and R2.shape == (2, 5, 3, 3) and t2.shape == (2, 5, 3)
    # mm -> m -> mm: within one unit in the last place
    assert np.allclose(t2, t[..., 0], rtol=2.3e-16, atol=0)


@pytest.mark.parametrize(
    "R, t, message",
    [
        (np.eye(4), np.zeros(3), r"R must be \[\.\.\., 3, 3\], got shape \(4, 4\)"),
        (np.eye(3), np.zeros(4), r"t_mm must be \[\.\.\., 3\] with the leading shape of R \(\), got shape \(4,\)"),
        (np.stack([np.eye(3)] * 2), np.zeros(3), r"leading shape of R \(2,\), got shape \(3,\)"),
    ],
)
def test_shape_errors(R, t, message):
    with pytest.raises(ShapeError, match=message):
        Rt_mm_to_T_co(R, t)


def test_inverse_shape_error():
    with pytest.raises(ShapeError, match=r"T_co_to_Rt_mm: T_co must be \[\.\.\., 4, 4\], got shape \(3, 4\)"):
        T_co_to_Rt_mm(np.zeros((3, 4)))
