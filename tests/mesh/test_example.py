"""iterpose.mesh.example: the generated example object."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from iterpose.mesh import compute_model_info, example_object


def _arrays():
    obj = example_object()
    return obj, obj.vertices.double().numpy(), obj.faces.numpy()


def test_shapes_dtypes_size():
    obj, v, f = _arrays()
    assert obj.obj_id == 1 and obj.name == "example" and obj.source is None
    assert obj.vertices.dtype == torch.float32 and obj.faces.dtype == torch.int64
    assert obj.vertex_colors.shape == obj.vertices.shape == obj.vertex_normals.shape == (1178, 3)
    assert obj.num_faces == 2352
    assert 0.10 <= obj.diameter_m <= 0.16
    assert obj.diameter_m == pytest.approx(compute_model_info(obj).diameter_mm / 1000.0, rel=1e-12)
    np.testing.assert_allclose((v.min(0) + v.max(0)) / 2, 0.0, atol=1e-7)  # bbox-centred like BOP
    assert example_object(obj_id=5).obj_id == 5
    assert not obj.is_symmetric


def test_deterministic():
    a, b = example_object(), example_object()
    assert torch.equal(a.vertices, b.vertices) and torch.equal(a.vertex_colors, b.vertex_colors)
    assert a.mesh_hash() == b.mesh_hash()


def test_closed_and_outward():
    _, v, f = _arrays()
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # watertight
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # consistent winding
    tri = v[f]
    signed_volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert signed_volume > 1e-4  # > 100 cm^3, positive: CCW seen from outside
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ij,ij->i", n, tri.mean(1)) > 0).all()  # star-shaped about the origin: every face outward


def test_vertex_normals_unit_and_outward():
    obj, v, _ = _arrays()
    n = obj.vertex_normals.double().numpy()
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    assert (np.einsum("ij,ij->i", n, v) > 0).all()


def test_asymmetric():
    _, v, _ = _arrays()
    eig = np.linalg.eigvalsh(np.cov(v.T))
    assert eig[1] / eig[0] > 1.3 and eig[2] / eig[1] > 1.3  # distinct principal extents
    _, axes = np.linalg.eigh(np.cov(v.T))
    tree = cKDTree(v)
    centre = v.mean(0)
    for k in range(3):  # the only candidates left by distinct extents: half turns about principal axes
        a = axes[:, k]
        R = 2 * np.outer(a, a) - np.eye(3)
        moved = (v - centre) @ R.T + centre
        assert tree.query(moved)[0].max() > 0.01  # some vertex lands > 1 cm from the surface's vertices


def test_colourful():
    obj, _, f = _arrays()
    c = obj.vertex_colors.numpy()
    assert c.min() >= 0 and c.max() <= 1
    assert (c.std(axis=0) > 0.2).all()
    assert len(np.unique(c, axis=0)) == 6
    edge_jumps = np.abs(c[f[:, 0]] - c[f[:, 1]]).sum(1) > 0.5
    assert 0.05 < edge_jumps.mean() < 0.5  # patches, not noise
