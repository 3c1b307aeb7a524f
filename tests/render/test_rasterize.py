"""rasterize: hand-computed tiny scenes, exact agreement numba == torch == reference, watertight edges, crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iterpose.errors import CameraError, InvalidInputError, ShapeError
from iterpose.render import rasterize, rasterize_reference

BACKENDS = ["numba", "torch", "reference"]


def _raster(backend, *args, **kwargs):
    if backend == "reference":
        return rasterize_reference(*args, **kwargs)
    return rasterize(*args, backend=backend, **kwargs)


def _K(f=1000.0, cx=0.0, cy=0.0, fy=None, dtype=torch.float32):
    return torch.tensor([[f, 0, cx], [0, f if fy is None else fy, cy], [0, 0, 1]], dtype=dtype)


def _verts_at_pixels(uvz, f=1000.0, cx=0.0, cy=0.0):
    """Camera-frame vertices [V, 3] float64 that project to pixel coords (u, v) at depth z, for K = _K(f, cx, cy)."""
    uvz = torch.as_tensor(uvz, dtype=torch.float64)
    u, v, z = uvz.unbind(-1)
    return torch.stack([(u - cx) * z / f, (v - cy) * z / f, z], -1)


# A right triangle with legs 5 px (x) and 3 px (y) at z = 1 m: covered pixel centres satisfy 3j + 5i < 15
# (hypotenuse: a right/bottom edge, ties excluded), i >= 0 (top edge, ties included), j >= 0 (left edge, included).
RIGHT_TRIANGLE_MASK = np.array([
    [1, 1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0],
], dtype=bool)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("winding", [[0, 1, 2], [0, 2, 1]])
def test_right_triangle_hand_computed(backend, winding):
    v = _verts_at_pixels([[0, 0, 1.0], [5, 0, 1.0], [0, 3, 1.0]]).float()
    r = _raster(backend, v, torch.tensor([winding]), _K(), 5, 7)
    assert r.face_id.shape == (1, 5, 7) and r.face_id.dtype == torch.int32
    np.testing.assert_array_equal(r.face_id[0].numpy() == 0, RIGHT_TRIANGLE_MASK)
    np.testing.assert_array_equal(r.face_id[0].numpy()[~RIGHT_TRIANGLE_MASK], -1)
    np.testing.assert_array_equal(r.depth_m[0].numpy(), RIGHT_TRIANGLE_MASK.astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_principal_point_shifts_the_triangle(backend):
    # same triangle, cx = 2, cy = 1: it moves right by 2 and down by 1 pixel
    v = _verts_at_pixels([[0, 0, 1.0], [5, 0, 1.0], [0, 3, 1.0]])
    r = _raster(backend, v, torch.tensor([[0, 1, 2]]), _K(cx=2.0, cy=1.0), 5, 7)
    expected = np.zeros((5, 7), bool)
    expected[1:, 2:] = RIGHT_TRIANGLE_MASK[:4, :5]
    np.testing.assert_array_equal(r.face_id[0].numpy() >= 0, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_perspective_correct_depth_of_tilted_triangle(backend):
    # vertices on exact pixel positions at different depths: depth at a pixel = ray/plane intersection
    P = _verts_at_pixels([[0.0, 0.0, 0.5], [7.0, 1.0, 2.0], [2.0, 6.0, 1.0]], f=100.0)
    r = _raster(backend, P, torch.tensor([[0, 1, 2]]), _K(f=100.0, dtype=torch.float64), 7, 8)
    n = torch.linalg.cross(P[1] - P[0], P[2] - P[0])
    cov = r.face_id[0] >= 0
    assert int(cov.sum()) >= 15
    ii, jj = cov.nonzero(as_tuple=True)
    rays = torch.stack([jj / 100.0, ii / 100.0, torch.ones(len(ii), dtype=torch.float64)], -1)
    z = (n @ P[0]) / (rays @ n)  # ray x = s * (u/f, v/f, 1) hits the plane at depth s
    np.testing.assert_allclose(r.depth_m[0][cov].double().numpy(), z.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_overlapping_triangles_nearest_wins(backend, order):
    near = _verts_at_pixels([[0, 0, 1.0], [6, 0, 1.0], [0, 4, 1.0]])
    far = _verts_at_pixels([[1, 1, 2.0], [6, 4, 2.0], [1, 4, 2.0]])
    v = torch.cat([near, far])
    tris = torch.tensor([[0, 1, 2], [3, 4, 5]])[order]
    id_near, id_far = order.index(0), order.index(1)
    r = _raster(backend, v, tris, _K(), 5, 7)
    fid = r.face_id[0]
    assert int(fid[1, 1]) == id_near and float(r.depth_m[0, 1, 1]) == 1.0  # both cover (1, 1): near wins
    assert int(fid[3, 4]) == id_far and float(r.depth_m[0, 3, 4]) == 2.0  # only the far one covers (3, 4)
    assert int(fid[4, 0]) == -1 and float(r.depth_m[0, 4, 0]) == 0.0


def _grid_mesh(nx, ny, x0, y0, step, jitter_seed=None):
    """A planar triangulated grid of (nx+1) x (ny+1) vertices starting at pixel (x0, y0), spacing `step` px,
    inner vertices optionally jittered; returns (uv [V, 2] pixels, faces [F, 3] with mixed windings)."""
    gx, gy = np.meshgrid(np.arange(nx + 1) * step + x0, np.arange(ny + 1) * step + y0)
    uv = np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float64)
    if jitter_seed is not None:
        rng = np.random.default_rng(jitter_seed)
        inner = ((gx > x0) & (gx < x0 + nx * step) & (gy > y0) & (gy < y0 + ny * step)).ravel()
        uv[inner] += rng.uniform(-0.4, 0.4, (int(inner.sum()), 2)) * step
        uv[inner] = np.round(uv[inner] * 2) / 2  # half-pixel positions: many pixel centres exactly on edges
    faces = []
    for r in range(ny):
        for c in range(nx):
            a, b = r * (nx + 1) + c, r * (nx + 1) + c + 1
            d, e = a + nx + 1, b + nx + 1
            if (r + c) % 2:
                faces += [[a, b, e], [a, d, e][::-1]]
            else:
                faces += [[a, b, d], [b, e, d][::-1]]
    return uv, torch.tensor(faces)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("jitter_seed", [None, 3])
def test_shared_edges_cover_each_pixel_exactly_once(backend, jitter_seed):
    uv, faces = _grid_mesh(4, 3, x0=2, y0=1, step=4, jitter_seed=jitter_seed)
    z = np.full((len(uv), 1), 1.5)
    v = _verts_at_pixels(np.concatenate([uv, z], 1), f=300.0).float()
    K = _K(f=300.0)
    count = torch.zeros(16, 20, dtype=torch.int64)
    for f in range(faces.shape[0]):  # each triangle alone
        count += (rasterize(v, faces[f:f + 1], K, 16, 20, backend=backend).face_id[0] >= 0).long()
    expected = torch.zeros(16, 20, dtype=torch.int64)
    expected[1:13, 2:18] = 1  # rectangle [2, 18) x [1, 13): top and left edges in, bottom and right out
    torch.testing.assert_close(count, expected, rtol=0, atol=0)
    whole = rasterize(v, faces, K, 16, 20, backend=backend).face_id[0]
    torch.testing.assert_close((whole >= 0).long(), expected, rtol=0, atol=0)


def _random_scene(seed, B=2, F=12):
    g = torch.Generator().manual_seed(seed)
    centre = torch.tensor([0.0, 0.0, 0.3])
    v = centre + (torch.rand(B, 3 * F, 3, generator=g) - 0.5) * torch.tensor([0.2, 0.15, 0.5])
    v[:, :3, 2] = torch.tensor([0.005, 0.3, 0.3])  # first triangle crosses the near plane
    v[:, 3:6] = v[:, 3:4]  # second triangle is degenerate (a point)
    faces = torch.arange(3 * F).view(F, 3)
    faces[::3] = faces[::3].flip(1)  # mixed windings
    K = torch.tensor([[60.0, 0.5, 9.3], [0, 55.0, 7.6], [0, 0, 1]]).expand(B, 3, 3).clone()
    K[B - 1, 0, 2] += 1.7 * (B > 1)
    return v, faces, K


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numba_torch_reference_agree_exactly(seed):
    v, faces, K = _random_scene(seed)
    crop = torch.tensor([[-3, 2, 17, 13], [4, -1, 17, 13]])
    for kw in ({}, {"crop": crop}):
        ref = rasterize_reference(v, faces, K, 14, 18, **kw)
        assert int((ref.face_id >= 0).sum()) > 50
        for backend in ("numba", "torch"):
            r = rasterize(v, faces, K, 14, 18, backend=backend, **kw)
            assert r.backend == backend
            torch.testing.assert_close(r.face_id, ref.face_id, rtol=0, atol=0)
            torch.testing.assert_close(r.depth_m, ref.depth_m, rtol=0, atol=1e-6)


def test_near_plane_drops_crossing_triangles():
    v = _verts_at_pixels([[0, 0, 1.0], [5, 0, 1.0], [0, 3, 1.0]])
    v_cross = v.clone()
    v_cross[1, 2] = 0.005  # one vertex nearer than near_m = 0.01
    for backend in BACKENDS:
        assert int((_raster(backend, v_cross, torch.tensor([[0, 1, 2]]), _K(), 5, 7).face_id >= 0).sum()) == 0
        r = _raster(backend, v_cross, torch.tensor([[0, 1, 2]]), _K(), 5, 7, near_m=0.001)
        assert int((r.face_id >= 0).sum()) > 0


def test_crop_is_a_window_of_the_full_render():
    v, faces, K = _random_scene(5, B=2, F=30)
    full = rasterize(v, faces, K, 14, 18)
    crop = torch.tensor([[3, 2, 9, 7], [0, 5, 9, 7]])
    r = rasterize(v, faces, K, 14, 18, crop=crop)
    assert r.face_id.shape == (2, 7, 9)
    for b, (x0, y0, w, h) in enumerate(crop.tolist()):
        torch.testing.assert_close(r.face_id[b], full.face_id[b, y0:y0 + h, x0:x0 + w], rtol=0, atol=0)
        torch.testing.assert_close(r.depth_m[b], full.depth_m[b, y0:y0 + h, x0:x0 + w], rtol=0, atol=0)
    torch.testing.assert_close(r.offsets, crop[:, :2], rtol=0, atol=0)


def test_unbatched_vertices_and_K_broadcast():
    v, faces, K = _random_scene(4, B=1)
    a = rasterize(v[0], faces, K[0], 14, 18)
    b = rasterize(v, faces, K, 14, 18)
    assert a.face_id.shape == (1, 14, 18)
    torch.testing.assert_close(a.face_id, b.face_id, rtol=0, atol=0)


def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    v, faces, K = _random_scene(7, F=40)
    cpu = rasterize(v, faces, K, 14, 18)
    gpu = rasterize(v.cuda(), faces.cuda(), K.cuda(), 14, 18)
    assert gpu.backend == "torch" and gpu.face_id.device.type == "cuda"
    torch.testing.assert_close(gpu.face_id.cpu(), cpu.face_id, rtol=0, atol=0)
    torch.testing.assert_close(gpu.depth_m.cpu(), cpu.depth_m, rtol=0, atol=0)


def test_torch_backend_small_chunks_give_same_result():
    from iterpose.render._torch_raster import rasterize_torch

    v, faces, K = _random_scene(8, F=20)
    r = rasterize(v, faces, K, 14, 18, backend="torch")
    off = torch.zeros(2, 2, dtype=torch.int64)
    fid, depth = rasterize_torch(v.double(), faces, K.double(), off, 14, 18, 0.01, chunk_fragments=7)
    torch.testing.assert_close(fid, r.face_id, rtol=0, atol=0)
    torch.testing.assert_close(depth, r.depth_m, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"backend": "cuda"}, InvalidInputError, "backend='cuda' is not one of"),
        ({"K": torch.eye(4)}, ShapeError, "K must be [B, 3, 3]"),
        ({"K": torch.tensor([[-5.0, 0, 1], [0, 5, 1], [0, 0, 1]])}, CameraError, "K[0]"),
        ({"K": torch.tensor([[5.0, 0, 1], [0, 5, 1], [0, 0, float("nan")]])}, CameraError, "NaN"),
        ({"faces": torch.tensor([[0, 1, 3]])}, InvalidInputError, "only 3 vertices"),
        ({"faces": torch.tensor([[0.0, 1, 2]])}, InvalidInputError, "faces must be an integer"),
        ({"vertices_cam": torch.zeros(3, 2)}, ShapeError, "vertices_cam must be [B, V, 3]"),
        ({"crop": torch.tensor([[0, 0, 3, 3], [0, 0, 4, 3]])}, InvalidInputError, "share w, h"),
        ({"crop": torch.tensor([0, 0, 3])}, ShapeError, "crop must be [B, 4]"),
        ({"height": 0}, InvalidInputError, "height must be a positive int"),
        ({"near_m": -1.0}, InvalidInputError, "near_m must be a positive"),
    ],
)
def test_bad_input_raises_typed_errors(kwargs, error, fragment):
    args = {"vertices_cam": torch.tensor([[[0.0, 0, 1], [0.01, 0, 1], [0, 0.01, 1]]]).expand(2, 3, 3),
            "faces": torch.tensor([[0, 1, 2]]), "K": _K(), "height": 4, "width": 5}
    args.update(kwargs)
    with pytest.raises(error) as exc:
        rasterize(args.pop("vertices_cam"), args.pop("faces"), args.pop("K"), args.pop("height"), args.pop("width"),
                  **args)
    assert fragment in str(exc.value)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_depth_is_finite_and_within_the_visible_faces_z_range(backend):
    v, faces, K = _random_scene(11, B=2, F=60)
    # make some triangles nearly edge-on: their plane passes (almost) through the camera centre
    v[:, 30:33] = torch.tensor([[0.01, 0.0, 0.2], [0.02, 0.0, 0.4], [0.0150001, 0.0, 0.3]])
    r = rasterize(v, faces, K, 14, 18, backend=backend)
    assert bool(torch.isfinite(r.depth_m).all())
    b, i, j = (r.face_id >= 0).nonzero(as_tuple=True)
    z = v[b[:, None], faces[r.face_id[b, i, j].long()], 2]  # [P, 3] vertex depths of the visible face
    d = r.depth_m[b, i, j]
    assert bool((d >= z.amin(1)).all() and (d <= z.amax(1)).all())


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_faces_and_nan_vertices_give_empty_pixels(backend):
    v = _verts_at_pixels([[0, 0, 1.0], [5, 0, 1.0], [0, 3, 1.0], [1, 1, 1.0]]).float()
    r = _raster(backend, v, torch.zeros(0, 3, dtype=torch.int64), _K(), 4, 6)
    assert r.face_id.shape == (1, 4, 6) and int(r.face_id.max()) == -1 and float(r.depth_m.abs().max()) == 0.0
    v[3, 0] = float("nan")  # a triangle using a NaN vertex is dropped, the others are drawn
    r = _raster(backend, v, torch.tensor([[0, 1, 3], [0, 1, 2]]), _K(), 4, 6)
    assert set(r.face_id.unique().tolist()) == {-1, 1}


def test_skewed_K_is_accepted_and_used():
    """The rasteriser supports skew (validate_K(allow_skew=True)): a skew moves the silhouette sideways."""
    v = torch.tensor([[[-0.05, -0.05, 1.0], [0.05, -0.05, 1.0], [0.0, 0.05, 1.0]]])
    f = torch.tensor([[0, 1, 2]])
    K0 = torch.tensor([[100.0, 0.0, 15.5], [0.0, 100.0, 15.5], [0.0, 0.0, 1.0]])
    K1 = K0.clone()
    K1[0, 1] = 40.0  # x += 0.4 * y_pixel_offset: rows below the centre shift right
    m0 = rasterize(v, f, K0, 32, 32).mask[0]
    m1 = rasterize(v, f, K1, 32, 32).mask[0]
    cols = torch.arange(32.0)
    row = 19  # below the principal point (y = 0.035 m -> 3.5 px below), where the skew adds +1.4 px in x
    c0 = (cols * m0[row]).sum() / m0[row].sum()
    c1 = (cols * m1[row]).sum() / m1[row].sum()
    assert m0.sum() > 20 and abs(float(c1 - c0) - 1.4) < 0.6
