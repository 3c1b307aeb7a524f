"""The synthetic renderer's colour interpolation against geometry, not against its own NumPy twin.

With the camera-frame vertex positions as the "colours", a perspective-correct interpolation returns, at each covered
pixel, the 3D point where that pixel's ray meets the triangle. So the result must (1) lie on the ray through the
pixel centre (x = j, y = i in OpenCV's convention), (2) lie on the plane of the pixel's triangle and (3) inside it,
and (4) an affine function of position interpolates to the same function of that point. Triangles are tilted (depth
varies by 40 %), so an interpolation linear in screen space misses (1) by far more than the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iterpose.data.synth_render import interpolate_colors, interpolate_colors_reference
from iterpose.render import rasterize

VERTS = np.array([[-0.03, -0.02, 0.45], [0.04, -0.015, 0.62], [0.0, 0.035, 0.5], [0.05, 0.04, 0.7]])
FACES = np.array([[0, 1, 2], [1, 3, 2]], np.int64)
K = np.array([[220.0, 0.0, 15.3], [0.0, 205.0, 12.1], [0.0, 0.0, 1.0]])
H, W = 26, 33


def _check_surface_points(X: np.ndarray, face_id: np.ndarray, offset=(0, 0)) -> None:
    i, j = np.nonzero(face_id >= 0)
    assert len(i) > 100
    P = X[i, j].astype(np.float64)
    # (1) on the pixel's ray
    np.testing.assert_allclose(P[:, 0] / P[:, 2], (j + offset[0] - K[0, 2]) / K[0, 0], rtol=0, atol=2e-6)
    np.testing.assert_allclose(P[:, 1] / P[:, 2], (i + offset[1] - K[1, 2]) / K[1, 1], rtol=0, atol=2e-6)
    # (2) on its triangle's plane and (3) inside it: barycentrics from sub-triangle areas (a second algorithm)
    tri = VERTS[FACES[face_id[i, j]]]  # [n, 3 vertices, 3]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(normal, axis=1)
    unit = normal / area2[:, None]
    np.testing.assert_allclose(np.einsum("nk,nk->n", unit, P - tri[:, 0]), 0.0, rtol=0, atol=2e-7)
    bary = np.stack([np.einsum("nk,nk->n", unit, np.cross(tri[:, (k + 1) % 3] - P, tri[:, (k + 2) % 3] - P)) / area2
                     for k in range(3)], axis=1)
    np.testing.assert_allclose(bary.sum(axis=1), 1.0, rtol=0, atol=1e-5)
    assert bary.min() > -1e-3  # pixel centres covered by the rasteriser are inside (up to float32 rounding)


@pytest.mark.parametrize("impl", [interpolate_colors, interpolate_colors_reference], ids=["numba", "reference"])
def test_interpolated_positions_are_ray_triangle_intersections(impl):
    face_id = rasterize(torch.from_numpy(VERTS), torch.from_numpy(FACES), torch.from_numpy(K), H, W).face_id[0]
    face_id = face_id.numpy()
    assert (face_id == 0).sum() > 50 and (face_id == 1).sum() > 50
    X = impl(face_id, VERTS, FACES, VERTS.astype(np.float32), K)
    _check_surface_points(X, face_id)
    assert (X[face_id < 0] == 0).all()


@pytest.mark.parametrize("impl", [interpolate_colors, interpolate_colors_reference], ids=["numba", "reference"])
def test_crop_window_and_affine_colours(impl):
    """A crop window at (x0, y0) = (5, 3) and colours c = A x + b (affine in position, hence exact)."""
    crop = torch.tensor([[5, 3, 24, 19]])
    face_id = rasterize(torch.from_numpy(VERTS), torch.from_numpy(FACES), torch.from_numpy(K), H, W,
                        crop=crop).face_id[0].numpy()
    X = impl(face_id, VERTS, FACES, VERTS.astype(np.float32), K, (5, 3))
    _check_surface_points(X, face_id, (5, 3))
    A = np.array([[2.0, -1.0, 0.5], [0.3, 4.0, -2.0], [-1.5, 0.2, 1.0]])
    b = np.array([0.1, 0.5, 0.9])
    colors = (VERTS @ A.T + b).astype(np.float32)
    C = impl(face_id, VERTS, FACES, colors, K, (5, 3))
    m = face_id >= 0
    np.testing.assert_allclose(C[m], X[m].astype(np.float64) @ A.T + b, rtol=0, atol=5e-6)
