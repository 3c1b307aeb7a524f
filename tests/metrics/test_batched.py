"""Torch batched helpers (metres) agree with the NumPy BOP functions (mm) on random poses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from iterpose.errors import ShapeError
from iterpose.metrics import batched as B
from iterpose.metrics import pose_error as pe


def _poses(n, seed):
    rng = np.random.default_rng(seed)
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3] = Rotation.random(n, random_state=seed).as_matrix()
    T[:, :3, 3] = np.column_stack([rng.normal(size=(n, 2)) * 0.05, 0.8 + rng.random(n) * 0.2])
    return T


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_match_numpy(device, dtype):
    n = 4
    Te, Tg = _poses(n, 0), _poses(n, 1)
    pts = np.random.default_rng(2).normal(size=(50, 3)) * 0.03
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    rtol = 1e-4 if dtype == torch.float32 else 1e-9
    mm = lambda T: (T[:3, :3], T[:3, 3] * 1000)  # noqa: E731
    ref = {
        "add": [pe.add(*mm(Te[i]), *mm(Tg[i]), pts * 1000) / 1000 for i in range(n)],
        "adi": [pe.adi(*mm(Te[i]), *mm(Tg[i]), pts * 1000) / 1000 for i in range(n)],
        "proj": [pe.proj(*mm(Te[i]), *mm(Tg[i]), K, pts * 1000) for i in range(n)],
        "re": [pe.re(Te[i][:3, :3], Tg[i][:3, :3]) for i in range(n)],
        "te": [pe.te(Te[i][:3, 3], Tg[i][:3, 3]) for i in range(n)],
    }
    got = {
        "add": B.add_m(t(Te), t(Tg), t(pts)), "adi": B.adi_m(t(Te), t(Tg), t(pts)),
        "proj": B.proj_px(t(Te), t(Tg), t(K), t(pts)), "re": B.re_deg(t(Te), t(Tg)), "te": B.te_m(t(Te), t(Tg)),
    }
    for k in ref:
        assert got[k].device.type == device.type and got[k].dtype == dtype and got[k].shape == (n,)
        np.testing.assert_allclose(got[k].cpu().double().numpy(), ref[k], rtol=rtol, atol=rtol * 1e-2, err_msg=k)


def test_add_pure_translation_and_shape_errors():
    Tg = torch.eye(4, dtype=torch.float64)[None]
    Te = Tg.clone()
    Te[0, :3, 3] = torch.tensor([0.003, 0.004, 0.0], dtype=torch.float64)
    pts = torch.randn(10, 3, dtype=torch.float64)
    assert B.add_m(Te, Tg, pts).item() == pytest.approx(0.005, abs=1e-15)
    with pytest.raises(ShapeError, match="T_est must be"):
        B.add_m(Te[0], Tg, pts)
    with pytest.raises(ShapeError, match="points must be"):
        B.adi_m(Te, Tg, torch.zeros(10, 2, dtype=torch.float64))


def test_points_and_K_follow_the_poses_device_and_dtype():
    # meta tensors stand in for an accelerator: CPU points and K (the usual case) must not raise a device mismatch
    Te = torch.tensor(_poses(3, 0), dtype=torch.float32, device="meta")
    Tg = torch.tensor(_poses(3, 1), dtype=torch.float32, device="meta")
    pts = torch.randn(20, 3, dtype=torch.float64)
    K = torch.tensor([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]], dtype=torch.float64)
    for out in (B.add_m(Te, Tg, pts), B.adi_m(Te, Tg, pts), B.proj_px(Te, Tg, K, pts)):
        assert out.device.type == "meta" and out.dtype == torch.float32 and out.shape == (3,)
