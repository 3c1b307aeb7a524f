"""render_objects / render_scene / render_depth on tiny generated objects."""

from __future__ import annotations

import math

import pytest
import torch

from iterpose.errors import CameraError, InvalidInputError, PoseError, ShapeError
from iterpose.mesh.model import ObjectModel
from iterpose.render import interpolate, rasterize, render_depth, render_objects, render_scene

H, W = 24, 32
K = torch.tensor([[40.0, 0, 15.2], [0, 42.0, 11.7], [0, 0, 1]])


def _box(obj_id, size, colors=True):
    sx, sy, sz = size
    v = torch.tensor([[x, y, z] for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)]) / 2
    f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    c = torch.linspace(0, 1, 24).view(8, 3) if colors else None
    return ObjectModel(obj_id=obj_id, name=f"box{obj_id}", vertices=v.float(), faces=f, vertex_colors=c,
                       vertex_normals=None, diameter_m=float(torch.tensor(size).norm()))


def _pose(t, angle=0.3, axis=(0.3, 1.0, 0.2)):
    a = torch.tensor(axis) / torch.tensor(axis).norm()
    Kx = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    R = torch.eye(3) + math.sin(angle) * Kx + (1 - math.cos(angle)) * Kx @ Kx
    T = torch.eye(4)
    T[:3, :3] = R
    T[:3, 3] = torch.tensor(t)
    return T


BOX_A = _box(1, (0.05, 0.04, 0.03))
BOX_B = _box(2, (0.03, 0.06, 0.02), colors=False)


def test_render_objects_matches_primitives():
    T = torch.stack([_pose([0.0, 0.0, 0.3]), _pose([0.01, -0.01, 0.25], angle=-0.7), _pose([0.0, 0.01, 0.35])])
    out = render_objects([BOX_A, BOX_B, BOX_A], T, K, H, W)
    assert out.rgb.shape == (3, 3, H, W) and out.depth_m.shape == (3, H, W) and out.mask.dtype == torch.bool
    assert out.normals_cam.shape == (3, 3, H, W)
    for n, m in enumerate([BOX_A, BOX_B, BOX_A]):
        vc = m.vertices @ T[n, :3, :3].T + T[n, :3, 3]
        r = rasterize(vc, m.faces, K, H, W)
        torch.testing.assert_close(out.face_id[n], r.face_id[0], rtol=0, atol=0)
        covered = r.face_id[0] >= 0
        assert int(covered.sum()) > 30
        exact = interpolate(vc[..., 2:], r, vc, m.faces)[0, 0]  # ray-exact, differentiable depth
        torch.testing.assert_close(out.depth_m[n], exact, rtol=0, atol=1e-7)
        # raster depth is the same ray/plane depth in float32 (pixels inside the triangle; rim pixels covered only
        # because of the 1/256 px snapping are clamped to the triangle's z range)
        assert float((exact[covered] - r.depth_m[0][covered]).abs().median()) < 1e-7
        assert float(out.rgb[n][:, ~covered].abs().max()) == 0.0
    # the grey default albedo for the model without colours, shaded: 0.7 * (0.5 + 0.5 |n.l|) in [0.35, 0.7]
    rgb_b = out.rgb[1][:, out.mask[1]]
    assert float(rgb_b.min()) >= 0.35 - 1e-6 and float(rgb_b.max()) <= 0.7 + 1e-6
    torch.testing.assert_close(rgb_b[0], rgb_b[2])


def test_render_objects_crop_and_unshaded():
    T = torch.stack([_pose([0.0, 0.0, 0.3]), _pose([0.01, 0.0, 0.3])])
    full = render_objects([BOX_A, BOX_A], T, K, H, W, shading=False)
    crop = torch.tensor([[4, 3, 16, 12], [10, 8, 16, 12]])
    cr = render_objects([BOX_A, BOX_A], T, K, H, W, crop=crop, shading=False)
    assert cr.rgb.shape == (2, 3, 12, 16)
    for n, (x0, y0, w, h) in enumerate(crop.tolist()):
        torch.testing.assert_close(cr.rgb[n], full.rgb[n, :, y0:y0 + h, x0:x0 + w])
        torch.testing.assert_close(cr.mask[n], full.mask[n, y0:y0 + h, x0:x0 + w])
    # unshaded rgb is the interpolated vertex colour: inside the colour range of the model
    assert float(full.rgb.max()) <= 1.0 and float(full.rgb[:, :, full.mask[0]].min()) >= 0.0


def test_render_objects_gradient_flows_to_pose():
    T = _pose([0.0, 0.0, 0.3])[None].double().requires_grad_()
    out = render_objects([BOX_A], T, K.double(), H, W)
    (out.rgb.sum() + out.depth_m.sum()).backward()
    assert T.grad is not None and bool(torch.isfinite(T.grad).all())
    assert float(T.grad[0, :3].abs().sum()) > 0


def test_render_scene_occlusion_and_masks():
    T = torch.stack([_pose([0.0, 0.0, 0.3]), _pose([0.01, 0.005, 0.4], angle=0.8), _pose([0.0, 0.0, 0.3])])
    Kb = torch.stack([K, K])
    image_index = torch.tensor([0, 0, 1])
    sc = render_scene([BOX_A, BOX_B, BOX_B], T, Kb, image_index, H, W)
    assert sc.rgb.shape == (2, 3, H, W) and sc.instance_id.shape == (2, H, W) and sc.mask_full.shape == (3, H, W)
    alone = render_objects([BOX_A, BOX_B, BOX_B], T, Kb[image_index], H, W)
    torch.testing.assert_close(sc.mask_full, alone.mask, rtol=0, atol=0)
    assert bool((sc.mask_visible <= sc.mask_full).all())
    both = alone.mask[0] & alone.mask[1]
    assert int(both.sum()) > 5  # the far box B is partly hidden by the near box A
    assert bool((sc.instance_id[0][both] == 0).all())
    d0, d1 = alone.depth_m[0], alone.depth_m[1]
    expected_depth = torch.where(alone.mask[0], d0, d1)
    torch.testing.assert_close(sc.depth_m[0], expected_depth, rtol=0, atol=1e-6)
    torch.testing.assert_close(sc.rgb[0], torch.where(alone.mask[0], alone.rgb[0], alone.rgb[1]), rtol=0,
                               atol=1e-6)
    torch.testing.assert_close(sc.instance_id[1], torch.where(alone.mask[2], 2, -1), rtol=0, atol=0)
    torch.testing.assert_close(sc.mask_visible[1], alone.mask[1] & ~alone.mask[0], rtol=0, atol=0)


def test_render_scene_empty_image():
    sc = render_scene([BOX_A], _pose([0.0, 0.0, 0.3])[None], torch.stack([K, K]), torch.tensor([1]), H, W)
    assert int((sc.instance_id[0] >= 0).sum()) == 0 and float(sc.rgb[0].abs().max()) == 0.0
    assert int((sc.instance_id[1] == 0).sum()) > 30


def test_render_depth_shapes_and_values():
    T = torch.stack([_pose([0.0, 0.0, 0.3]), _pose([0.0, 0.0, 0.5])])
    d1 = render_depth(BOX_A, T[0], K, H, W)
    dn = render_depth(BOX_A, T, K, H, W)
    assert d1.shape == (H, W) and dn.shape == (2, H, W) and dn.dtype == torch.float32
    torch.testing.assert_close(d1, dn[0], rtol=0, atol=0)
    m = dn[1] > 0
    assert float(dn[1][m].min()) > 0.5 - 0.04 and float(dn[1][m].max()) < 0.5 + 0.04


@pytest.mark.parametrize(
    "change, error, fragment",
    [
        ("nan", PoseError, "T_co[1] (instance 1) contains NaN"),
        ("behind", PoseError, "T_co[1] (instance 1) puts the object origin behind the camera"),
        ("models", ShapeError, "models has 1 entries but T_co has N=2"),
        ("K", CameraError, "K[0]"),
        ("shape", ShapeError, "T_co must be [N, 4, 4]"),
    ],
)
def test_render_objects_errors(change, error, fragment):
    T = torch.stack([_pose([0.0, 0.0, 0.3]), _pose([0.0, 0.0, 0.4])])
    models, Kx = [BOX_A, BOX_A], K
    if change == "nan":
        T[1, 0, 3] = float("nan")
    elif change == "behind":
        T[1, 2, 3] = -0.4
    elif change == "models":
        models = [BOX_A]
    elif change == "K":
        Kx = K.clone()
        Kx[2, 2] = 2.0
    elif change == "shape":
        T = T[:, :3]
    with pytest.raises(error) as exc:
        render_objects(models, T, Kx, H, W)
    assert fragment in str(exc.value)


def test_render_scene_bad_image_index():
    with pytest.raises(InvalidInputError, match=r"image_index values must be in \[0, 1\)"):
        render_scene([BOX_A], _pose([0.0, 0.0, 0.3])[None], K, torch.tensor([1]), H, W)
    with pytest.raises(ShapeError, match="image_index must be"):
        render_scene([BOX_A], _pose([0.0, 0.0, 0.3])[None], K, torch.tensor([0, 0]), H, W)


def test_render_objects_no_instances():
    out = render_objects([], torch.zeros(0, 4, 4), K, H, W)
    assert out.rgb.shape == (0, 3, H, W) and out.mask.shape == (0, H, W) and out.face_id.dtype == torch.int32
