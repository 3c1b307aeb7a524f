"""Intrinsics: validation errors, crop, zoom (checked against cv2.resize of a Gaussian blob), look-at pose."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from iterpose.errors import CameraError, InvalidInputError, ShapeError
from iterpose.geometry import crop_K, look_at_T_co, project_points, transform_points, validate_K, zoom_K

F64 = torch.float64


def _K(dtype=F64, device="cpu"):
    return torch.tensor([[572.4114, 0.0, 325.2611], [0.0, 573.57043, 242.04899], [0.0, 0.0, 1.0]], dtype=dtype,
                        device=device)


# ---------------------------------------------------------------------------------------------- validate_K
def test_validate_K_accepts_and_returns_same(device, dtype):
    K = _K(dtype, device).expand(2, 3, 3, 3)
    assert validate_K(K) is K


@pytest.mark.parametrize(
    "row, col, value, exc, fragment",
    [
        (0, 0, float("nan"), CameraError, r"validate_K: K_crop\[1\] has NaN or inf entries"),
        (0, 0, -500.0, CameraError, r"validate_K: K_crop\[1\] has fx = -500.0 <= 0"),
        (1, 1, 0.0, CameraError, r"validate_K: K_crop\[1\] has fy = 0.0 <= 0"),
        (2, 2, 2.0, CameraError, r"K_crop\[1\] has bottom row \[0.0, 0.0, 2.0\], must be \(0, 0, 1\)"),
        (2, 0, 0.1, CameraError, r"K_crop\[1\] has bottom row \[0.1, 0.0, 1.0\]"),
        (0, 1, 2.5, CameraError, r"K_crop\[1\] has skew K\[0, 1\] = 2.5; only zero-skew"),
        (1, 0, 1.0, CameraError, r"K_crop\[1\] has K\[1, 0\] = 1.0, must be 0"),
    ],
)
def test_validate_K_errors_name_argument_index_and_value(row, col, value, exc, fragment):
    K = _K().expand(3, 3, 3).clone()
    K[1, row, col] = value
    with pytest.raises(exc, match=fragment):
        validate_K(K, name="K_crop")


def test_validate_K_shape_and_type_errors():
    with pytest.raises(ShapeError, match=r"validate_K: K must have shape \[\*, 3, 3\], got \[3, 4\]"):
        validate_K(torch.zeros(3, 4))
    with pytest.raises(ShapeError, match="validate_K: K must be a torch.Tensor of shape .*got list"):
        validate_K([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ShapeError, match="K must be a floating-point tensor.*torch.int64"):
        validate_K(torch.eye(3, dtype=torch.int64))
    tiny_skew = _K().clone()
    tiny_skew[0, 1] = 1e-6  # ~0 skew is tolerated
    validate_K(tiny_skew)


# ---------------------------------------------------------------------------------------------- crop / zoom
def test_crop_K_shifts_principal_point(device, dtype, tols):
    K = _K(dtype, device)
    box = torch.tensor([[100.0, 50.0, 64.0, 64.0], [7.5, -3.0, 10.0, 10.0]], dtype=dtype, device=device)
    Kc = crop_K(K, box)
    assert Kc.shape == (2, 3, 3)
    X = torch.tensor([[0.03, -0.01, 0.7], [-0.05, 0.04, 1.2]], dtype=dtype, device=device)
    uv = project_points(K, X)
    torch.testing.assert_close(project_points(Kc, X.expand(2, 2, 3)), uv - box[:, None, :2], **tols)
    assert torch.equal(K, _K(dtype, device))  # input not modified


def test_crop_K_matches_array_slicing():
    K = _K()
    uv = project_points(K, torch.tensor([[0.0123, -0.0456, 0.9]], dtype=F64))[0]
    j, i = int(round(uv[0].item())), int(round(uv[1].item()))
    img = np.zeros((480, 640))
    img[i, j] = 1.0
    x0, y0 = 200, 150
    crop = img[y0:y0 + 100, x0:x0 + 160]
    uv_c = project_points(crop_K(K, torch.tensor([x0, y0, 160, 100], dtype=F64)),
                          torch.tensor([[0.0123, -0.0456, 0.9]], dtype=F64))[0]
    assert crop[int(round(uv_c[1].item())), int(round(uv_c[0].item()))] == 1.0


def _blob(h, w, u0, v0, sigma):
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    return np.exp(-((jj - u0) ** 2 + (ii - v0) ** 2) / (2 * sigma**2))


def _centroid(img):
    jj, ii = np.meshgrid(np.arange(img.shape[1]), np.arange(img.shape[0]))
    return np.array([(jj * img).sum() / img.sum(), (ii * img).sum() / img.sum()])


@pytest.mark.parametrize(
    "box, out_hw, sigma",
    [((17, 9, 40, 30), (75, 80), 3.0), ((20, 12, 48, 40), (20, 24), 5.0), ((11, 5, 50, 45), (45, 65), 4.0)],
    ids=["up-2.5y-2x", "down-0.5", "up-1.3x"],
)
def test_zoom_K_matches_cv2_resize(box, out_hw, sigma):
    """A blob at the projection of X, cropped and resized by OpenCV, is centred where K_zoom projects X."""
    K = torch.tensor([[80.0, 0.0, 41.3], [0.0, 85.0, 33.7], [0.0, 0.0, 1.0]], dtype=F64)  # 64 x 96 image
    X = torch.tensor([[0.012, -0.031, 0.5]], dtype=F64)
    u0, v0 = project_points(K, X)[0].tolist()
    img = _blob(64, 96, u0, v0, sigma)
    x0, y0, w, h = box
    resized = cv2.resize(img[y0:y0 + h, x0:x0 + w], (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR)
    measured = _centroid(resized)
    predicted = project_points(zoom_K(K, torch.tensor(box, dtype=F64), out_hw), X)[0].numpy()
    np.testing.assert_allclose(measured, predicted, rtol=0, atol=0.02)
    # the naive formula without the half-pixel terms is off by 0.5 (s - 1) and would fail above
    s = np.array([out_hw[1] / w, out_hw[0] / h])
    assert np.abs(0.5 * (s - 1)).max() > 5 * 0.02


def test_zoom_K_identity_size_equals_crop_and_batch(device, dtype, tols):
    K = _K(dtype, device)
    box = torch.tensor([[100.0, 50.0, 64.0, 48.0], [7.0, 3.0, 32.0, 32.0]], dtype=dtype, device=device)
    Kz = zoom_K(K, box[:1], (48, 64))
    torch.testing.assert_close(Kz, crop_K(K, box[:1]), **tols)
    Kb = zoom_K(K.expand(2, 3, 3), box, (128, 128))
    assert Kb.shape == (2, 3, 3) and Kb.dtype == dtype
    torch.testing.assert_close(Kb[1, 0, 0], K[0, 0] * 4, **tols)
    torch.testing.assert_close(Kb[1, 0, 2], 4 * (K[0, 2] - 7.0) + 1.5, **tols)
    torch.testing.assert_close(Kb[0, 1, 2], (128 / 48) * (K[1, 2] - 50.0) + 0.5 * (128 / 48 - 1), **tols)


def test_zoom_K_gradcheck():
    K = _K().requires_grad_()
    box = torch.tensor([100.0, 50.0, 64.0, 48.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda k, b: zoom_K(k, b, (32, 40)), (K, box))


def test_zoom_K_errors():
    K = _K()
    with pytest.raises(InvalidInputError, match=r"zoom_K: out_hw must be \(out_h, out_w\), two positive ints, got"):
        zoom_K(K, torch.tensor([0.0, 0.0, 10.0, 10.0]), (0, 10))
    with pytest.raises(InvalidInputError, match=r"zoom_K: box_xywh\[1\] has width/height \[10.0, -2.0\]"):
        zoom_K(K, torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, -2.0]]), (8, 8))
    with pytest.raises(InvalidInputError, match=r"zoom_K: box_xywh has width/height \[0.0, 10.0\]"):
        zoom_K(K, torch.tensor([0.0, 0.0, 0.0, 10.0]), (8, 8))
    with pytest.raises(ShapeError, match=r"crop_K: box_xywh must have shape \[\*, 4\], got \[3\]"):
        crop_K(K, torch.zeros(3))


# ---------------------------------------------------------------------------------------------- look-at
def test_look_at_axes_and_projection(device, dtype, tols):
    eye = torch.tensor([[0.3, -0.4, 0.5], [1.0, 1.0, 1.0]], dtype=dtype, device=device)
    target = torch.tensor([0.01, 0.02, -0.03], dtype=dtype, device=device)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device)
    T = look_at_T_co(eye, target, up)
    assert T.shape == (2, 4, 4) and T.dtype == dtype
    R = T[:, :3, :3]
    eye3 = torch.eye(3, dtype=dtype, device=device).expand(2, 3, 3)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye3, **tols)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(2, dtype=dtype, device=device), **tols)
    # eye is the camera centre; target is on the optical axis (+z) at the right distance
    torch.testing.assert_close(transform_points(T, eye[:, None]), torch.zeros(2, 1, 3, dtype=dtype, device=device),
                               rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-14)
    tc = transform_points(T, target.expand(2, 1, 3))[:, 0]
    torch.testing.assert_close(tc[:, :2], torch.zeros(2, 2, dtype=dtype, device=device), rtol=0,
                               atol=1e-6 if dtype == torch.float32 else 1e-14)
    torch.testing.assert_close(tc[:, 2], (target - eye).norm(dim=-1), **tols)
    K = _K(dtype, device)
    uv_t = project_points(K, tc[:, None])[:, 0]
    torch.testing.assert_close(uv_t, K[:2, 2].expand(2, 2), rtol=0, atol=1e-3 if dtype == torch.float32 else 1e-9)
    # a point above the target (along +up) appears higher in the image (smaller v, since y points down)
    above = transform_points(T, (target + 0.05 * up).expand(2, 1, 3))
    assert bool((project_points(K, above)[:, 0, 1] < uv_t[:, 1]).all())
    # and the camera x axis (image right) is horizontal: orthogonal to up
    torch.testing.assert_close(R[:, 0] @ up, torch.zeros(2, dtype=dtype, device=device), rtol=0, atol=1e-6)


def test_look_at_right_handed_example():
    # camera on +x looking at the origin with z up: image right is world -y... check with cross products
    T = look_at_T_co(torch.tensor([2.0, 0.0, 0.0], dtype=F64), torch.zeros(3, dtype=F64),
                     torch.tensor([0.0, 0.0, 1.0], dtype=F64))
    expected_R = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(T[:3, :3], expected_R, rtol=0, atol=1e-15)
    torch.testing.assert_close(T[:3, 3], torch.tensor([0.0, 0.0, 2.0], dtype=F64), rtol=0, atol=1e-15)


def test_look_at_errors():
    z = torch.zeros(3)
    with pytest.raises(InvalidInputError, match="look_at_T_co: eye and target coincide"):
        look_at_T_co(z, z, torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(InvalidInputError, match="look_at_T_co: up is zero or parallel to target - eye"):
        look_at_T_co(torch.tensor([0.0, 0.0, 2.0]), z, torch.tensor([0.0, 0.0, 1.0]))
    with pytest.raises(ShapeError, match=r"look_at_T_co: up must have shape \[\*, 3\], got \[2\]"):
        look_at_T_co(torch.tensor([0.0, 0.0, 2.0]), z, torch.zeros(2))


def test_validate_K_skew_option_and_caller_name():
    K = torch.tensor([[500.0, 3.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    with pytest.raises(CameraError, match=r"^validate_K: K has skew"):
        validate_K(K)
    assert validate_K(K, allow_skew=True) is K
    bad = K.clone()
    bad[1, 1] = 0.0
    with pytest.raises(CameraError, match=r"^rasterize: K_crop has fy = 0.0"):
        validate_K(bad, "K_crop", allow_skew=True, caller="rasterize")
