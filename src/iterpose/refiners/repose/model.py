"""`ReposeNet`: image features once per image, deep-texture renders per object, unrolled differentiable LM.

One forward pass (all tensors batch-first; N objects in B images; S = window side in feature pixels):

1. ``F_img = FeatureNet(images)``: ``[B, C, h, w]`` at stride s. Feature pixel ``(i, j)`` is image pixel
   ``(s i, s j)``: the feature camera is ``K_f = diag(1/s, 1/s, 1) K`` (the sampling grid of stride-s convolutions).
2. per object, a fixed ``S x S`` window of the feature map around its initial pose (projected bounding sphere x
   ``window_margin``, the same S for every object of the call): the observed features ``F_obs [N, C, S, S]`` and
   ``valid [N, S, S]`` (False outside the image).
3. per iteration: the render mesh at the current pose (detached: visibility and the Jacobian are constants, as
   RePOSE) is rasterised in the window and its deep texture interpolated, ``F_rend [N, C, S, S]`` (0 off the
   object); residual ``r = F_rend - F_obs``; Jacobian ``J = grad F_rend . d(uv)/d(xi)`` on the rendered
   foreground (central differences, ``projection_jacobian_se3`` of the back-projected depth); the damped
   Gauss-Newton step ``xi = (JᵀJ + lambda diag(JᵀJ) + eps I)⁻¹ Jᵀ r`` (the textbook sign, see
   ../shared/reference/repose.md: RePOSE's released code uses the opposite) through :func:`iterpose.refiners.lm.
   damped_step`; ``T <- se3_exp(xi) T`` (camera frame). Gradients flow through every step to the image network,
   the texture and the damping network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from iterpose.geometry import projection_jacobian_se3
from iterpose.refiners.lm import apply_step, damped_step
from iterpose.refiners.proxy_mesh import ProxyMesh, backproject
from iterpose.refiners.repose.config import ReposeConfig
from iterpose.refiners.repose.features import FeatureNet
from iterpose.refiners.repose.texture import DeepTexture
from iterpose.render import interpolate, rasterize

__all__ = ["ReposeNet", "Windows", "FeatureRender", "ReposeTrace", "feature_camera"]

_SOLVE_EPS = 1e-6  # absolute diagonal regulariser of the 6x6 systems (objects with no visible pixel take no step)
_MIN_WINDOW = 8  # feature pixels
_TRUNK_STRIDE = 8  # image crops start at multiples of it, so their feature grids are the whole image's


def feature_camera(K: torch.Tensor, stride: int) -> torch.Tensor:
    """``[*, 3, 3]`` intrinsics of the feature map: ``diag(1/s, 1/s, 1) K`` (feature pixel j is image pixel s j)."""
    scale = torch.tensor([1.0 / stride, 1.0 / stride, 1.0], dtype=K.dtype, device=K.device)
    return K * scale[:, None]


@dataclass(frozen=True, eq=False)
class Windows:
    """The comparison windows of N objects in the feature maps.

    Attributes:
        offsets: ``[N, 2]`` int64 CPU ``(x0, y0)`` of each window in its feature map (feature pixels).
        side: S, window side in feature pixels (the same for all).
        K_feat: ``[N, 3, 3]`` float32 full feature-map intrinsics of each object's image.
        K_win: ``[N, 3, 3]`` float32 intrinsics of the windows (``K_feat`` with the offsets subtracted).
        feat_hw: ``(h, w)`` of the feature maps.
    """

    offsets: torch.Tensor
    side: int
    K_feat: torch.Tensor
    K_win: torch.Tensor
    feat_hw: tuple[int, int]


@dataclass(frozen=True, eq=False)
class FeatureRender:
    """Deep-texture renders of N objects in their windows.

    Attributes:
        features: ``[N, C, S, S]`` interpolated texture features, 0 off the object (differentiable w.r.t. the
            texture). mask: ``[N, S, S]`` bool silhouette. support: ``[N, S, S]`` bool silhouette + its 1-pixel
            ring (where the Jacobian is evaluated). X_cam: ``[N, S, S, 3]`` camera-frame point on the support
            (metres; the ring pixels take a neighbour's depth; ``(0, 0, 1)`` elsewhere, a harmless placeholder).
    """

    features: torch.Tensor
    mask: torch.Tensor
    support: torch.Tensor
    X_cam: torch.Tensor


@dataclass(frozen=True, eq=False)
class ReposeTrace:
    """Result of :meth:`ReposeNet.forward`.

    Attributes:
        poses: list of T + 1 ``[N, 4, 4]`` float32 poses (``poses[0]`` the initial ones); differentiable.
        costs: ``[T + 1, N]`` mean squared feature residual over the valid window pixels at each pose of
            ``poses`` (detached); ``cost_init`` / ``cost_final`` are its first and last rows.
        scores: ``[T + 1, N]`` in 0..1 at each pose: ``1 - |F_obs - F_rend|² / (|F_obs|² + |F_rend|²)`` summed over
            the rendered foreground (detached); ``score_init`` / ``score`` are its first and last rows.
        lambdas: ``[T, N]`` the damping of each step (detached).
        windows: the :class:`Windows` used.
    """

    poses: list
    costs: torch.Tensor
    scores: torch.Tensor
    lambdas: torch.Tensor
    windows: Windows

    @property
    def cost_init(self) -> torch.Tensor:
        return self.costs[0]

    @property
    def cost_final(self) -> torch.Tensor:
        return self.costs[-1]

    @property
    def score(self) -> torch.Tensor:
        return self.scores[-1]

    @property
    def score_init(self) -> torch.Tensor:
        return self.scores[0]


class DampingNet(nn.Module):
    """``lambda [N] = exp(MLP(mean r, mean r²))`` from the per-channel residual statistics ``[N, 2C]`` (RePOSE
    feeds the mean residual to an MLP 3-16-16-1); starts at ``init`` for any input."""

    def __init__(self, channels: int, init: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * channels, 16), nn.ReLU(inplace=True), nn.Linear(16, 16),
                                 nn.ReLU(inplace=True), nn.Linear(16, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.constant_(self.mlp[-1].bias, math.log(init))

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.mlp(stats)[:, 0].clamp(-12.0, 6.0))


class ReposeNet(nn.Module):
    """The RePOSE model over a fixed set of objects.

    Args:
        meshes: ``{obj_id: ProxyMesh}`` render meshes (object frame, metres).
        config: :class:`ReposeConfig`.
        generator: seeds the texture latents (the networks use torch's global RNG: seed it).
    """

    def __init__(self, meshes: Mapping[int, ProxyMesh], config: ReposeConfig,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.meshes = dict(sorted((int(k), v) for k, v in meshes.items()))
        C = config.feature_channels
        self.features = FeatureNet(C, config.feature_stride, config.decoder_width, config.trunk_frozen)
        colors = {k: _vertex_colors(m) for k, m in self.meshes.items()} if config.texture == "rgb" else None
        self.texture = DeepTexture({k: m.vertices.shape[0] for k, m in self.meshes.items()}, C,
                                   config.texture_latent_dim, config.texture_hidden, config.texture, colors, generator)
        self.damping = DampingNet(C, config.fixed_damping) if config.damping == "learned" else None
        self.timings = {"render_s": 0.0, "lm_s": 0.0}

    def reset_timings(self) -> None:
        """Zero the wall-clock accumulators ``timings["render_s"]`` (rasterise + texture) and ``["lm_s"]``
        (residuals, Jacobians, solves)."""
        self.timings = {"render_s": 0.0, "lm_s": 0.0}

    # -- pieces ------------------------------------------------------------------------------------------------

    def windows(self, K: torch.Tensor, image_hw: tuple[int, int], T_co: torch.Tensor, obj_ids: list[int]) -> Windows:
        """Windows around ``T_co [N, 4, 4]`` for objects in images with ``K [N, 3, 3]`` of size ``image_hw``."""
        cfg = self.config
        s = cfg.feature_stride
        h, w = -(-image_hw[0] // s), -(-image_hw[1] // s)
        K_feat = feature_camera(K.float(), s)
        T = T_co.detach().float()
        radius = torch.tensor([self.meshes[i].diameter_m / 2 for i in obj_ids], device=T.device)
        z = T[:, 2, 3].clamp_min(1e-3)
        u = K_feat[:, 0, 0] * T[:, 0, 3] / z + K_feat[:, 0, 2]
        v = K_feat[:, 1, 1] * T[:, 1, 3] / z + K_feat[:, 1, 2]
        diam_px = 2 * radius * torch.maximum(K_feat[:, 0, 0], K_feat[:, 1, 1]) / z
        side = int(math.ceil(float(diam_px.max()) * cfg.window_margin)) if len(obj_ids) else _MIN_WINDOW
        side = max(_MIN_WINDOW, min(side, cfg.max_window_px // s))
        side += side % 2
        offsets = torch.stack([torch.round(u - side / 2), torch.round(v - side / 2)], dim=1).long().cpu()
        K_win = K_feat.clone()
        K_win[:, 0, 2] -= offsets[:, 0].to(K_win)
        K_win[:, 1, 2] -= offsets[:, 1].to(K_win)
        return Windows(offsets=offsets, side=side, K_feat=K_feat, K_win=K_win, feat_hw=(h, w))

    def region_features(self, images: torch.Tensor, win: Windows, image_index: torch.Tensor) -> torch.Tensor:
        """Feature maps ``[B, C, h, w]`` computed only on the box around each image's windows (enlarged by
        ``feature_crop_margin_px``, snapped to the trunk's stride so the feature grid is the whole image's); 0
        elsewhere. With ``feature_crop_margin_px = -1``, the whole images."""
        margin = self.config.feature_crop_margin_px
        if margin < 0:
            return self.features(images)
        s, S = self.config.feature_stride, win.side
        B, _, H, W = images.shape
        h, w = win.feat_hw
        out = images.new_zeros(B, self.config.feature_channels, h, w)
        idx = image_index.cpu()
        for b in sorted(set(idx.tolist())):
            off = win.offsets[idx == b]
            x0 = max(0, (int(off[:, 0].min()) * s - margin) // _TRUNK_STRIDE * _TRUNK_STRIDE)
            y0 = max(0, (int(off[:, 1].min()) * s - margin) // _TRUNK_STRIDE * _TRUNK_STRIDE)
            x1 = min(W, (int(off[:, 0].max()) + S) * s + margin)
            y1 = min(H, (int(off[:, 1].max()) + S) * s + margin)
            if x1 <= x0 or y1 <= y0:
                continue
            f = self.features(images[b:b + 1, :, y0:y1, x0:x1])[0]
            fy, fx = y0 // s, x0 // s
            hh, ww = min(f.shape[1], h - fy), min(f.shape[2], w - fx)
            out[b, :, fy:fy + hh, fx:fx + ww] = f[:, :hh, :ww]
        return out

    def observed_windows(self, F_img: torch.Tensor, image_index: torch.Tensor, win: Windows
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F_obs [N, C, S, S], valid [N, S, S] bool)``: the windows cut from the feature maps (0 and invalid
        outside them); differentiable w.r.t. ``F_img``."""
        S = win.side
        h, w = F_img.shape[-2:]
        padded = F.pad(F_img, (S, S, S, S))
        inside = F.pad(torch.ones(1, 1, h, w, device=F_img.device), (S, S, S, S))[0, 0] > 0
        crops, valid = [], []
        for n, (x0, y0) in enumerate(win.offsets.tolist()):
            x0 = min(max(x0 + S, 0), w + S)
            y0 = min(max(y0 + S, 0), h + S)
            crops.append(padded[int(image_index[n]), :, y0:y0 + S, x0:x0 + S])
            valid.append(inside[y0:y0 + S, x0:x0 + S])
        if not crops:
            return F_img.new_zeros(0, F_img.shape[1], S, S), torch.zeros(0, S, S, dtype=torch.bool,
                                                                        device=F_img.device)
        return torch.stack(crops), torch.stack(valid)

    def render(self, obj_ids: list[int], T_co: torch.Tensor, win: Windows) -> FeatureRender:
        """Deep-texture renders of objects ``obj_ids`` at ``T_co [N, 4, 4]`` (detached) in the windows ``win``."""
        t_start = time.perf_counter()
        N, S, C = len(obj_ids), win.side, self.config.feature_channels
        dev = T_co.device
        T = T_co.detach().float()
        feats = [None] * N
        depth = torch.zeros(N, S, S, device=dev)
        groups: dict[int, list[int]] = {}
        for n, oid in enumerate(obj_ids):
            groups.setdefault(oid, []).append(n)
        h, w = win.feat_hw
        for oid, idx in groups.items():
            mesh = self.meshes[oid]
            sel = torch.tensor(idx, device=dev)
            Tk = T[sel]
            verts = mesh.vertices.to(dev) @ Tk[:, :3, :3].transpose(1, 2) + Tk[:, None, :3, 3]
            crop = torch.cat([win.offsets[idx], torch.full((len(idx), 2), S, dtype=torch.int64)], dim=1)
            faces = mesh.faces.to(dev)
            raster = rasterize(verts, faces, win.K_feat[sel], h, w, crop=crop)
            f = interpolate(self.texture(oid).unsqueeze(0), raster, verts, faces)  # [n, C, S, S]
            for k, n in enumerate(idx):
                feats[n] = f[k]
            depth[sel] = raster.depth_m.to(dev)
        features = torch.stack(feats) if N else torch.zeros(0, C, S, S, device=dev)
        mask = depth > 0
        # the Jacobian's support: the silhouette and the 1-pixel ring around it, where the central differences of
        # F_rend are not 0 either (background 0 next to the object); the ring takes its neighbours' depth. Without
        # the ring only the pixels the render covers too much are seen, which biases every step towards depth
        # (a shrinking silhouette removes them).
        ring_depth = F.max_pool2d(depth[:, None], 3, stride=1, padding=1)[:, 0]
        depth_ext = torch.where(mask, depth, ring_depth)
        support = depth_ext > 0
        X = backproject(depth_ext, win.K_win)
        X = torch.where(support[..., None], X, torch.tensor([0.0, 0.0, 1.0], device=dev))
        self.timings["render_s"] += time.perf_counter() - t_start
        return FeatureRender(features=features, mask=mask, support=support, X_cam=X)

    def step(self, T_co: torch.Tensor, F_obs: torch.Tensor, valid: torch.Tensor, rend: FeatureRender,
             win: Windows, diameter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One damped Gauss-Newton step: ``(new T_co [N, 4, 4], lambda [N])``, differentiable."""
        t_start = time.perf_counter()
        cfg = self.config
        Fr, support = rend.features, rend.support
        N, C, S, _ = Fr.shape
        gu = 0.5 * (F.pad(Fr, (0, 1))[..., 1:] - F.pad(Fr, (1, 0))[..., :-1])  # central differences, zero pad
        gv = 0.5 * (F.pad(Fr, (0, 0, 0, 1))[..., 1:, :] - F.pad(Fr, (0, 0, 1, 0))[..., :-1, :])
        Jp = projection_jacobian_se3(win.K_win.to(Fr), rend.X_cam.reshape(N, S * S, 3).to(Fr))
        Jp = Jp * (support & valid).reshape(N, S * S, 1, 1)  # [N, P, 2, 6]
        J = gu.reshape(N, C, S * S, 1) * Jp[:, None, :, 0] + gv.reshape(N, C, S * S, 1) * Jp[:, None, :, 1]
        vf = valid.to(Fr.dtype)[:, None]
        r = ((Fr - F_obs) * vf).reshape(N, C, S * S)
        H = torch.einsum("ncpi,ncpj->nij", J, J)
        g = -torch.einsum("ncpi,ncp->ni", J, r)
        if self.damping is None:
            lam = torch.full((N,), cfg.fixed_damping, device=Fr.device, dtype=Fr.dtype)
        else:
            count = vf.sum(dim=(2, 3)).clamp_min(1)
            stats = torch.cat([r.sum(2) / count, r.square().sum(2) / count], dim=1)
            lam = self.damping(stats)
        xi = damped_step(H.double(), g.double(), lam.double(), _SOLVE_EPS).to(Fr.dtype)
        xi = torch.where(torch.isfinite(xi), xi, torch.zeros_like(xi))
        xi = _limit_step(xi, cfg.max_step_trans_rel * diameter.to(xi), cfg.max_step_rot_rad)
        T_new = apply_step(T_co, xi)
        self.timings["lm_s"] += time.perf_counter() - t_start
        return T_new, lam

    @staticmethod
    def residual_cost(F_obs: torch.Tensor, valid: torch.Tensor, rend: FeatureRender
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cost [N], score [N])``: mean ``|F_obs - F_rend|²`` over the valid window, and the foreground score
        (see :class:`ReposeTrace`)."""
        vf = valid.to(F_obs.dtype)
        d2 = (F_obs - rend.features).square().sum(1)
        cost = (d2 * vf).sum(dim=(1, 2)) / vf.sum(dim=(1, 2)).clamp_min(1)
        fg = (rend.mask & valid).to(F_obs.dtype)
        energy = (F_obs.square().sum(1) + rend.features.square().sum(1)) * fg
        score = 1 - (d2 * fg).sum(dim=(1, 2)) / energy.sum(dim=(1, 2)).clamp_min(1e-12)
        return cost, score.clamp(0, 1)

    # -- the unrolled refinement -------------------------------------------------------------------------------

    def refine_features(self, F_img: torch.Tensor, image_hw: tuple[int, int], K: torch.Tensor,
                        object_ids: list[int], T_init: torch.Tensor, image_index: torch.Tensor, iterations: int,
                        windows: Windows | None = None) -> ReposeTrace:
        """Unrolled LM from ``T_init [N, 4, 4]`` given the feature maps ``F_img [B, C, h, w]`` of images of size
        ``image_hw`` with intrinsics ``K [B, 3, 3]``; ``image_index [N]`` int64. ``windows``: those of
        :meth:`windows` for these inputs when already computed."""
        dev = T_init.device
        win = windows
        if win is None:
            win = self.windows(K.to(dev).float()[image_index.to(dev)], image_hw, T_init, object_ids)
        F_obs, valid = self.observed_windows(F_img, image_index, win)
        diameter = torch.tensor([self.meshes[i].diameter_m for i in object_ids], device=dev)
        T = T_init.float()
        poses = [T]
        lambdas = []
        rend = self.render(object_ids, T, win)
        costs, scores = [], []
        with torch.no_grad():
            c, sc = self.residual_cost(F_obs, valid, rend)
        costs.append(c)
        scores.append(sc)
        for _ in range(iterations):
            T, lam = self.step(T, F_obs, valid, rend, win, diameter)
            poses.append(T)
            lambdas.append(lam.detach())
            rend = self.render(object_ids, T, win)
            with torch.no_grad():
                c, sc = self.residual_cost(F_obs, valid, rend)
            costs.append(c)
            scores.append(sc)
        lam_t = torch.stack(lambdas) if lambdas else torch.zeros(0, len(object_ids), device=dev)
        return ReposeTrace(poses=poses, costs=torch.stack(costs), scores=torch.stack(scores), lambdas=lam_t,
                           windows=win)

    def forward(self, images: torch.Tensor, K: torch.Tensor, object_ids: list[int], T_init: torch.Tensor,
                image_index: torch.Tensor, iterations: int | None = None) -> ReposeTrace:
        """Refine ``T_init [N, 4, 4]`` of objects ``object_ids`` (list of N ints) in ``images [B, 3, H, W]`` (RGB
        0..1) with ``K [B, 3, 3]``; ``image_index [N]`` int64. One feature pass for all objects."""
        iters = self.config.iterations if iterations is None else iterations
        F_img = self.features(images)
        return self.refine_features(F_img, tuple(images.shape[-2:]), K, object_ids, T_init, image_index, iters)


def _limit_step(xi: torch.Tensor, max_trans: torch.Tensor, max_rot: float) -> torch.Tensor:
    """Scale the translation part of ``xi [N, 6]`` to at most ``max_trans [N]`` metres and the rotation part to at
    most ``max_rot`` radians (differentiable, direction kept)."""
    v, w = xi[:, :3], xi[:, 3:]
    sv = (max_trans / v.norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    sw = (max_rot / w.norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
    return torch.cat([v * sv[:, None], w * sw[:, None]], dim=1)


def _vertex_colors(mesh: ProxyMesh) -> torch.Tensor:
    """``[V, 3]`` vertex colours of a render mesh: the mean albedo of the faces around each vertex."""
    V = mesh.vertices.shape[0]
    acc = torch.zeros(V, 3)
    cnt = torch.zeros(V, 1)
    for k in range(3):
        acc.index_add_(0, mesh.faces[:, k], mesh.face_albedo)
        cnt.index_add_(0, mesh.faces[:, k], torch.ones(len(mesh.faces), 1))
    return acc / cnt.clamp_min(1)
