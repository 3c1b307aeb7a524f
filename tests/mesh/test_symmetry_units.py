"""Symmetries read from models_info.json (mm) arrive in the model's unit (m): a symmetry whose translation offset is
not zero must still map the loaded (metre) vertices onto themselves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from iterpose.geometry.symmetry import bop_symmetry_transforms
from iterpose.mesh import load_objects

from .conftest import write_ply

# A closed box that is not centred on its origin: x in [0, 40], y in [-10, 10], z in [-5, 5] mm.
BOX_V = np.array([[x, y, z] for x in (0.0, 40.0) for y in (-10.0, 10.0) for z in (-5.0, 5.0)])
_QUADS = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
BOX_F = np.array([f for a, b, c, d in _QUADS for f in ((a, c, b), (a, d, c))])
# 180 deg about the z axis through (20, 0, 0): R = diag(-1, -1, 1), t = (40, 0, 0) mm.
SYM = [-1.0, 0.0, 0.0, 40.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]


@pytest.fixture
def models(tmp_path):
    write_ply(tmp_path / "obj_000001.ply", BOX_V, BOX_F)
    write_ply(tmp_path / "obj_000002.ply", BOX_V, BOX_F)
    diameter = float(np.linalg.norm(BOX_V[0] - BOX_V[-1]))
    info = {"1": {"diameter": diameter, "symmetries_discrete": [SYM]},
            "2": {"diameter": diameter, "symmetries_continuous": [{"axis": [0, 0, 2], "offset": [20.0, 0.0, 0.0]}]}}
    (tmp_path / "models_info.json").write_text(json.dumps(info))
    return load_objects(tmp_path)


def _maps_onto_itself(V: np.ndarray, R: np.ndarray, t: np.ndarray, tol: float) -> bool:
    W = V @ R.T + t
    d = np.linalg.norm(W[:, None, :] - V[None, :, :], axis=2).min(axis=1)
    return bool(d.max() < tol)


def test_discrete_symmetry_offset_in_metres(models):
    m = models[1]
    S = m.symmetries_discrete.numpy()
    assert S.shape == (1, 4, 4)
    np.testing.assert_allclose(S[0, :3, 3], [0.040, 0.0, 0.0], rtol=0, atol=1e-12)  # 40 mm -> 0.04 m
    V = m.vertices.double().numpy()
    np.testing.assert_allclose(V.max(axis=0), [0.040, 0.010, 0.005], rtol=0, atol=1e-7)
    assert _maps_onto_itself(V, S[0, :3, :3], S[0, :3, 3], 1e-6)
    # through the BOP symmetry set (identity first), as the metrics build it
    R_all, t_all = bop_symmetry_transforms(m.symmetries_discrete)
    assert all(_maps_onto_itself(V, R.numpy(), t.numpy(), 1e-6) for R, t in zip(R_all, t_all))


def test_continuous_symmetry_offset_in_metres(models):
    (sym,) = models[2].symmetries_continuous
    assert sym.axis == pytest.approx((0.0, 0.0, 1.0)) and sym.offset_m == pytest.approx((0.020, 0.0, 0.0), abs=1e-12)
    # the sampled rotation closest to a half turn about the offset axis moves the origin by |o - R o| ~ 2 |o| = 0.04 m
    R, t = bop_symmetry_transforms(None, models[2].symmetries_continuous, 0.01)
    k = int(torch.argmin((R[:, 0, 0] + 1.0).abs()))  # the sample closest to a half turn
    expected = np.array([0.020, 0.0, 0.0]) - R[k].numpy() @ np.array([0.020, 0.0, 0.0])
    np.testing.assert_allclose(t[k].numpy(), expected, rtol=0, atol=1e-12)
    assert float(t[k].norm()) == pytest.approx(0.040, abs=1e-4)
