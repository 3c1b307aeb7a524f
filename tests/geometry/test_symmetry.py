"""bop_symmetry_transforms against a numpy replica of bop_toolkit's get_symmetry_transformations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.geometry import bop_symmetry_transforms, bop_symmetry_transforms_np

# LM-O eggbox (obj 10) discrete symmetry from models_info.json, row-major 4x4, mm.
EGGBOX_SYM = [
    -0.999964, -0.00333777, -0.0077452, 0.232611,
    0.00321462, -0.999869, 0.0158593, 0.694388,
    -0.00779718, 0.0158338, 0.999844, -0.0792063,
    0.0, 0.0, 0.0, 1.0,
]  # fmt: skip


def _bop_reference(model_info: dict, max_sym_disc_step: float) -> list[dict]:
    """Independent numpy transcription of bop_toolkit_lib.misc.get_symmetry_transformations and of
    bop_toolkit_lib.transform.rotation_matrix / unit_vector (Gohlke), keeping bop's calls, dtypes and layouts:
    integer identity translation, 4x4 matrices sliced to 3x3 views, ``np.dot`` per transform."""

    def unit_vector(data):
        data = np.array(data, dtype=np.float64, copy=True)
        data /= math.sqrt(np.dot(data, data))
        return data

    def rotation_matrix(angle, direction):
        sina, cosa = math.sin(angle), math.cos(angle)
        direction = unit_vector(direction[:3])
        R = np.diag([cosa, cosa, cosa])
        R += np.outer(direction, direction) * (1.0 - cosa)
        direction *= sina
        R += np.array(
            [[0.0, -direction[2], direction[1]], [direction[2], 0.0, -direction[0]], [-direction[1], direction[0], 0.0]]
        )
        M = np.identity(4)
        M[:3, :3] = R
        return M

    trans_disc = [{"R": np.eye(3), "t": np.array([[0, 0, 0]]).T}]
    for sym in model_info.get("symmetries_discrete", []):
        m = np.reshape(sym, (4, 4))
        trans_disc.append({"R": m[:3, :3], "t": m[:3, 3].reshape((3, 1))})
    trans_cont = []
    for sym in model_info.get("symmetries_continuous", []):
        axis, offset = np.array(sym["axis"]), np.array(sym["offset"]).reshape((3, 1))
        n = int(np.ceil(np.pi / max_sym_disc_step))
        step = 2.0 * np.pi / n
        for i in range(n):
            R = rotation_matrix(i * step, axis)[:3, :3]
            trans_cont.append({"R": R, "t": -R.dot(offset) + offset})
    trans = []
    for d in trans_disc:
        if trans_cont:
            for c in trans_cont:
                trans.append({"R": c["R"].dot(d["R"]), "t": c["R"].dot(d["t"]) + c["t"]})
        else:
            trans.append(d)
    return trans


def _stack(trans):
    R = np.stack([np.asarray(x["R"], dtype=np.float64) for x in trans])
    t = np.stack([np.asarray(x["t"], dtype=np.float64).reshape(3) for x in trans])
    return R, t


def _assert_bits_equal(a: np.ndarray, b: np.ndarray) -> None:
    """Same shape, dtype float64 and the same 64 bits in every element (so -0.0 != 0.0, NaN patterns compared)."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.float64
    diff = a.view(np.uint64) != b.view(np.uint64)
    assert not diff.any(), f"{int(diff.sum())} elements differ, first at {np.argwhere(diff)[0].tolist()}: " \
        f"{a[tuple(np.argwhere(diff)[0])]!r} vs {b[tuple(np.argwhere(diff)[0])]!r}"


def test_eggbox_discrete_only(device):
    sym = torch.tensor(EGGBOX_SYM, dtype=torch.float64, device=device).reshape(1, 4, 4)
    R, t = bop_symmetry_transforms(sym)
    assert R.shape == (2, 3, 3) and t.shape == (2, 3)
    assert R.dtype == torch.float64 and t.dtype == torch.float64 and R.device == device
    torch.testing.assert_close(R[0], torch.eye(3, dtype=torch.float64, device=device), rtol=0, atol=0)
    assert t[0].abs().max().item() == 0.0
    # Discrete entry copied bit for bit.
    assert torch.equal(R[1].cpu(), sym[0, :3, :3].cpu())
    assert t[1].tolist() == [0.232611, 0.694388, -0.0792063]


def test_exact_180_about_z_maps_points():
    M = torch.eye(4, dtype=torch.float64)
    M[0, 0] = M[1, 1] = -1.0
    M[:3, 3] = torch.tensor([2.0, -4.0, 0.0])  # axis through (1, -2, *)
    R, t = bop_symmetry_transforms(M[None], [], 0.01)
    x = torch.tensor([3.0, 5.0, 7.0], dtype=torch.float64)
    assert (R[1] @ x + t[1]).tolist() == [-1.0, -9.0, 7.0]


def test_cylinder_gives_315_rotations_with_right_angles():
    R, t = bop_symmetry_transforms(None, [((0.0, 0.0, 2.0), (0.0, 0.0, 0.0))], 0.01)
    n = math.ceil(math.pi / 0.01)
    assert n == 315 and R.shape == (315, 3, 3) and t.shape == (315, 3)
    angles = torch.atan2(R[:, 1, 0], R[:, 0, 0])  # rotation about +z by theta: R[1,0] = sin, R[0,0] = cos
    expected = torch.arange(315, dtype=torch.float64) * (2 * math.pi / 315)
    expected = torch.atan2(torch.sin(expected), torch.cos(expected))
    torch.testing.assert_close(angles, expected, rtol=0, atol=1e-14)
    assert abs(2 * math.pi / 315 - math.radians(1.1428571428571428)) < 1e-15
    torch.testing.assert_close(R[:, 2, 2], torch.ones(315, dtype=torch.float64), rtol=0, atol=2.3e-16)
    assert t.abs().max().item() == 0.0


def test_offset_axis_keeps_axis_points_fixed():
    offset = (0.01, -0.02, 0.0)
    R, t = bop_symmetry_transforms(None, [((0.0, 1.0, 0.0), offset)], 0.1)
    assert R.shape[0] == math.ceil(math.pi / 0.1) == 32
    on_axis = torch.tensor([0.01, 0.37, 0.0], dtype=torch.float64)
    moved = torch.einsum("mij,j->mi", R, on_axis) + t
    torch.testing.assert_close(moved, on_axis.expand(32, 3), rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "info, step",
    [
        ({"symmetries_discrete": [EGGBOX_SYM]}, 0.01),
        ({"symmetries_continuous": [{"axis": [0, 0, 1], "offset": [0, 0, 0]}]}, 0.01),
        ({"symmetries_continuous": [{"axis": [0.3, -0.4, 1.2], "offset": [1.5, -2.0, 7.25]}]}, 0.05),
        (
            {
                "symmetries_discrete": [EGGBOX_SYM, [0, 1, 0, 3.5, -1, 0, 0, -0.25, 0, 0, 1, 0, 0, 0, 0, 1]],
                "symmetries_continuous": [
                    {"axis": [0, 0, 1], "offset": [0.5, 0.25, 0]},
                    {"axis": [1, 1, 0], "offset": [0, 0, -3]},
                ],
            },
            0.2,
        ),
    ],
    ids=["eggbox", "cylinder", "tilted-offset", "mixed"],
)
def test_matches_bop_toolkit_replica(info, step):
    ref_R, ref_t = _stack(_bop_reference(info, step))
    disc = torch.tensor(info.get("symmetries_discrete", np.zeros((0, 16))), dtype=torch.float64).reshape(-1, 4, 4)
    cont = [(s["axis"], s["offset"]) for s in info.get("symmetries_continuous", [])]
    R, t = bop_symmetry_transforms(disc, cont, step)
    assert R.dtype == torch.float64 and t.dtype == torch.float64
    # Same order and the same bits (same numpy calls on the same layouts, vectorised elementwise steps).
    _assert_bits_equal(R.numpy(), ref_R)
    _assert_bits_equal(t.numpy(), ref_t)


@pytest.mark.parametrize(
    "info, step",
    [
        ({"symmetries_discrete": [EGGBOX_SYM]}, 0.01),
        ({"symmetries_continuous": [{"axis": [0, 0, 1], "offset": [0, 0, 0]}]}, 0.01),
        ({"symmetries_continuous": [{"axis": [0.3, -0.4, 1.2], "offset": [1.5, -2.0, 7.25]}]}, 0.05),
        (
            {
                "symmetries_discrete": [EGGBOX_SYM, [0, 1, 0, 3.5, -1, 0, 0, -0.25, 0, 0, 1, 0, 0, 0, 0, 1]],
                "symmetries_continuous": [
                    {"axis": [0, 0, 1], "offset": [0.5, 0.25, 0]},
                    {"axis": [0.1, 0.7, -0.2], "offset": [13.1, 0.0, -3.3]},
                ],
            },
            0.01,
        ),
    ],
    ids=["eggbox", "cylinder", "tilted-offset", "mixed"],
)
def test_numpy_version_is_bit_identical_to_bop(info, step):
    """The NumPy implementation, with BOP's JSON values as given (ints or floats, 16-float discrete lists)."""
    ref_R, ref_t = _stack(_bop_reference(info, step))
    disc = np.reshape(np.array(info.get("symmetries_discrete", np.zeros((0, 16))), dtype=np.float64), (-1, 4, 4))
    cont = [(s["axis"], s["offset"]) for s in info.get("symmetries_continuous", [])]
    R, t = bop_symmetry_transforms_np(disc, cont, step)
    assert isinstance(R, np.ndarray) and isinstance(t, np.ndarray)
    assert R.flags.c_contiguous and t.flags.c_contiguous
    _assert_bits_equal(R, ref_R)
    _assert_bits_equal(t, ref_t)
    assert R.shape[0] == (1 + disc.shape[0]) * max(1, len(cont) * math.ceil(math.pi / step))


def test_numpy_version_does_not_change_its_inputs():
    disc = np.array(EGGBOX_SYM, dtype=np.float64).reshape(1, 4, 4)
    axis, offset = np.array([0.0, 0.0, 2.0]), np.array([1.0, 2.0, 3.0])
    before = (disc.copy(), axis.copy(), offset.copy())
    bop_symmetry_transforms_np(disc, [(axis, offset)], 0.1)
    for a, b in zip((disc, axis, offset), before):
        assert np.array_equal(a, b)


def test_numpy_version_errors_name_the_function():
    with pytest.raises(ShapeError, match=r"^bop_symmetry_transforms_np: symmetries_discrete must be \[S, 4, 4\]"):
        bop_symmetry_transforms_np(np.eye(4))
    zero_axis = r"^bop_symmetry_transforms_np: symmetries_continuous\[0\].axis is the zero"
    with pytest.raises(InvalidInputError, match=zero_axis):
        bop_symmetry_transforms_np(None, [((0, 0, 0), (0, 0, 0))])


def test_mixed_count_and_order():
    flip = torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=torch.float64))[None]
    R, t = bop_symmetry_transforms(flip, [((0, 0, 1), (0, 0, 0))], 0.01)
    assert R.shape == (630, 3, 3)
    # Discrete outer: the second block starts with the flip composed with the identity continuous sample.
    torch.testing.assert_close(R[315], flip[0, :3, :3], rtol=0, atol=0)
    torch.testing.assert_close(R[1], R[316] @ flip[0, :3, :3].T, rtol=0, atol=1e-15)


def test_accepts_objects_with_axis_and_offset_m():
    class Sym:
        axis = (0.0, 0.0, 1.0)
        offset_m = (0.0, 0.0, 0.0)

    R, _ = bop_symmetry_transforms(torch.zeros(0, 4, 4, dtype=torch.float64), [Sym()], 0.5)
    assert R.shape == (7, 3, 3)


def test_errors():
    with pytest.raises(ShapeError, match=r"symmetries_discrete must be \[S, 4, 4\].*got \[4, 4\]"):
        bop_symmetry_transforms(torch.eye(4))
    with pytest.raises(InvalidInputError, match="max_sym_disc_step must be finite and > 0.*got 0.0"):
        bop_symmetry_transforms(None, [], 0.0)
    with pytest.raises(InvalidInputError, match=r"symmetries_continuous\[0\].axis is the zero vector"):
        bop_symmetry_transforms(None, [((0, 0, 0), (0, 0, 0))])
    with pytest.raises(ShapeError, match=r"symmetries_continuous\[1\].offset must have 3 values, got 2"):
        bop_symmetry_transforms(None, [((0, 0, 1), (0, 0, 0)), ((0, 0, 1), (0, 0))])
    bad = torch.eye(4, dtype=torch.float64)[None].clone()
    bad[0, 0, 3] = float("nan")
    with pytest.raises(InvalidInputError, match="symmetries_discrete contains NaN"):
        bop_symmetry_transforms(bad)
