"""interpolate: perspective-correct values, gradients w.r.t. attributes and vertices (gradcheck, finite diffs)."""

from __future__ import annotations

import pytest
import torch

from iterpose.errors import ShapeError
from iterpose.render import interpolate, rasterize


def _scene(device, dtype=torch.float64):
    # two triangles of a tilted, non-planar quad; asymmetric; seen by a camera with skew-free K
    v = torch.tensor([[[-0.010, -0.008, 0.50], [0.012, -0.006, 0.55], [0.000, 0.011, 0.45], [0.010, 0.010, 0.52]]],
                     dtype=dtype, device=device)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]], device=device)
    K = torch.tensor([[400.0, 0, 7.3], [0, 410.0, 6.1], [0, 0, 1]], dtype=dtype, device=device)
    return v, faces, K, rasterize(v, faces, K, 14, 16)


def test_linear_function_of_position_is_reproduced(device):
    # attribute = a . X + c is affine in 3D, so its perspective-correct interpolation equals the function at the
    # ray/triangle intersection point, computed here independently from the plane equation
    v, faces, K, r = _scene(device)
    a = torch.tensor([3.0, -2.0, 5.0], dtype=torch.float64, device=device)
    out = interpolate((v[0] @ a + 0.25)[:, None], r, v, faces)
    assert out.shape == (1, 1, 14, 16)
    fid = r.face_id[0]
    assert int((fid == 0).sum()) > 10 and int((fid == 1).sum()) > 10
    for i, j in [(3, 4), (7, 8), (9, 13), (12, 8)]:
        f = int(fid[i, j])
        assert f >= 0
        p0, p1, p2 = v[0, faces[f]]
        n = torch.linalg.cross(p1 - p0, p2 - p0)
        ray = torch.tensor([(j - 7.3) / 400.0, (i - 6.1) / 410.0, 1.0], dtype=torch.float64, device=device)
        X = ray * (n @ p0) / (n @ ray)
        assert abs(float(out[0, 0, i, j]) - float(X @ a + 0.25)) < 1e-12
    assert float(out[0, 0][fid < 0].abs().max()) == 0.0


def test_interpolated_depth_matches_raster_depth(device):
    v, faces, K, r = _scene(device)
    z = interpolate(v[..., 2:], r, v, faces)[:, 0]
    m = r.face_id >= 0
    # both are the exact ray/plane depth; the raster's is rounded to float32 (0.5 m * 2**-24 = 3e-8 m)
    assert float((z[m] - r.depth_m[m].double()).abs().max()) < 6e-8
    assert float(z[~m].abs().max()) == 0.0


def test_gradcheck_attributes_and_vertices(device):
    v, faces, K, r = _scene(device)
    attr = torch.rand(1, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    attr = attr.to(device).requires_grad_()
    vv = v.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, x: interpolate(a, r, x, faces), (attr, vv), eps=1e-7, atol=1e-6)


def test_vertex_gradient_matches_central_differences(device):
    v, faces, K, r = _scene(device)
    g = torch.Generator().manual_seed(0)
    attr = torch.rand(4, 3, dtype=torch.float64, generator=g).to(device)
    w = torch.rand(1, 3, 14, 16, dtype=torch.float64, generator=g).to(device)
    loss = lambda x: (interpolate(attr, r, x, faces) * w).sum()  # noqa: E731
    vv = v.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(vv), vv)
    h = 1e-6
    fd = torch.zeros_like(v)
    for k in range(4):
        for c in range(3):
            e = torch.zeros_like(v)
            e[0, k, c] = h
            fd[0, k, c] = (loss(v + e) - loss(v - e)) / (2 * h)
    assert float(fd.abs().max()) > 1.0  # the positions really matter
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-5)


def test_attribute_gradient_is_the_barycentric_sum(device):
    v, faces, K, r = _scene(device)
    attr = torch.zeros(4, 1, dtype=torch.float64, device=device, requires_grad=True)
    interpolate(attr, r, v, faces).sum().backward()
    # barycentrics sum to 1 at every covered pixel, so the attribute gradients sum to the covered pixel count
    assert abs(float(attr.grad.sum()) - int((r.face_id >= 0).sum())) < 1e-9
    assert bool((attr.grad > 0).all())


def test_batch_and_broadcast_shapes():
    v, faces, K, _ = _scene("cpu", torch.float32)
    vb = torch.cat([v, v + torch.tensor([0.003, 0.0, 0.0])])
    r = rasterize(vb, faces, K.expand(2, 3, 3), 14, 16)
    out = interpolate(torch.ones(4, 5), r, vb, faces)
    assert out.shape == (2, 5, 14, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0], (r.face_id >= 0).float(), rtol=1e-5, atol=1e-5)


def test_bad_shapes():
    v, faces, K, r = _scene("cpu")
    with pytest.raises(ShapeError, match="attributes have 3 vertices but vertices_cam has 4"):
        interpolate(torch.ones(3, 2), r, v, faces)
    with pytest.raises(ShapeError, match="batch sizes differ"):
        interpolate(torch.ones(3, 4, 2), r, v, faces)
