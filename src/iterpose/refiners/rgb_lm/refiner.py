"""`RgbLM`: a training-free render-and-compare refiner (Levenberg-Marquardt on a region + photometric energy).

Per object, on a zoomed crop around the initial pose (:mod:`iterpose.refiners.crops`):

1. the object's render proxy (:mod:`iterpose.refiners.proxy_mesh`) is rendered with its vertex colours;
2. the cost is ``weight_region * E_region + weight_photometric * E_photo``: the PWP3D/RBOT region energy
   (:mod:`iterpose.refiners.rgb_lm.region`; colour histograms of the initial silhouette and of a band around it)
   and the robust photometric error with gain/bias per channel (:mod:`iterpose.refiners.photometric`) on the
   silhouette's interior. Default ``weight_photometric = 0``: on LM-O (texture-poor objects, vertex colours that
   do not match the photographs) every positive weight we tried lowered ADD(-S) on the validation images
   (0.1: -1 to +7 points at best, 0.5: -10 points), see ``benchmarks/RESULTS_rgb_lm.md``; the term stays
   available for textured objects;
3. Levenberg-Marquardt (:mod:`iterpose.refiners.lm`): a step is kept only if the cost decreases.

Options measured on LM-O and left off by default: the correspondence-line term of SRT3D
(:mod:`iterpose.refiners.rgb_lm.contour_lines`, ``weight_lines``) and re-estimating the histograms during the
iterations (``hist_update_every``, ``hist_update_rate``).

Occlusion: pixels where another object of the same image is in front (all objects rendered at their initial
poses) are neither foreground nor background evidence. Accept test, at the end: the refined pose replaces the
initial one only if (a) an energy that re-estimates the colour histograms from each pose's own silhouette (so the
initial pose's histograms do not favour it), plus the photometric cost, is lower by more than ``accept_margin``,
and (b) the image edge strength across the rendered contour keeps at least ``accept_edge_ratio`` of the initial
pose's (an alignment evidence independent of the histograms); otherwise ``KEPT_INITIAL_WORSE``, or, with
``depth_fallback`` (default), ``DEPTH_ONLY``: the initial pose slid along its viewing ray to the refined depth
(same rotation, same image position of the object origin), when that pose passes the energy part (a) of the
accept test (``depth_fallback_check="margin"``). On LM-O the silhouette's size is the reliable part of the region term's
answer: its image position and rotation are no better than a keypoint estimator's, its depth is
(``benchmarks/RESULTS_rgb_lm.md``). A result more
than ``max_rotation_deg`` / ``max_translation_rel`` x diameter from the initial pose is ``DIVERGED``. Both keep
the initial pose.

Score (0..1): at the returned pose, with histograms from its own silhouette, the mean foreground posterior over
the visible silhouette times the fraction of the background band whose pixels are classified background
(``P_f < 0.5``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from iterpose.errors import InvalidInputError
from iterpose.geometry import rotation_angle
from iterpose.refiners.base import RefineBatch, RefineOutput, Refiner, RefineStatus, RefineTimings
from iterpose.refiners.crops import crop_intrinsics, sample_crops, sphere_crop_boxes
from iterpose.refiners.lm import apply_step, damped_step, lm_accept, step_too_large
from iterpose.refiners.photometric import erode, image_gradients, photometric_terms
from iterpose.refiners.proxy_mesh import CropRender, ProxyMesh, make_proxy_mesh, render_proxies
from iterpose.refiners.rgb_lm.config import RgbLMConfig
from iterpose.refiners.rgb_lm.contour_lines import contour_line_terms
from iterpose.refiners.rgb_lm.region import (
    color_histograms,
    posteriors,
    region_energy,
    region_terms,
    signed_distance,
)

__all__ = ["RgbLM"]


@dataclass(frozen=True, eq=False)
class _Scene:
    """Per-object fixed data of one refine call (M objects, S x S crops)."""

    proxies: list
    diameter: torch.Tensor  # [M]
    K_crop: torch.Tensor  # [M, 3, 3]
    observed: torch.Tensor  # [M, 3, S, S] blurred observed crop
    grad_u: torch.Tensor
    grad_v: torch.Tensor
    valid: torch.Tensor  # [M, S, S] bool: in the image and not occluded
    Pf: torch.Tensor  # [M, S, S] foreground posterior (initial silhouette; updated by hist_update_every)
    raw: torch.Tensor  # [M, 3, S, S] observed crop (unblurred)
    hf: torch.Tensor  # [M, bins^3] foreground histogram
    hb: torch.Tensor  # [M, bins^3] background histogram


@dataclass(frozen=True, eq=False)
class _Terms:
    cost: torch.Tensor
    H: torch.Tensor | None
    g: torch.Tensor | None
    sd: object = None


class RgbLM(Refiner):
    """Training-free RGB render-and-compare refiner (see the module docstring).

    Args:
        objects: ``{obj_id: ObjectModel}`` (vertex colours are used; models without colours render grey).
        config: :class:`RgbLMConfig`.

    Example:
        >>> from iterpose.mesh import example_object
        >>> refiner = RgbLM({1: example_object()})
        >>> refiner.default_iterations
        10
    """

    def __init__(self, objects: Mapping[int, object], config: RgbLMConfig | None = None) -> None:
        if not isinstance(objects, Mapping) or not objects:
            size = len(objects) if hasattr(objects, "__len__") else "?"
            raise InvalidInputError("RgbLM: objects must be a non-empty dict {obj_id: ObjectModel}, got "
                                    f"{type(objects).__name__} of length {size}.")
        config = RgbLMConfig() if config is None else config
        if not isinstance(config, RgbLMConfig):
            raise InvalidInputError(f"RgbLM: config must be an RgbLMConfig, got {type(config).__name__}.")
        self.objects = MappingProxyType({int(k): v for k, v in objects.items()})
        self.config = config
        self.default_iterations = config.iterations
        self._proxies: dict[int, ProxyMesh] = {
            k: make_proxy_mesh(m, config.proxy_cell_rel * m.diameter_m) for k, m in self.objects.items()
        }

    # -- pieces ----------------------------------------------------------------------------------------------

    def _render(self, sc: _Scene, idx: torch.Tensor, T: torch.Tensor) -> CropRender:
        return render_proxies([sc.proxies[i] for i in idx.tolist()], T, sc.K_crop[idx], self.config.crop_size)

    def _terms(self, sc: _Scene, idx: torch.Tensor, r: CropRender, with_system: bool = True, sd=None) -> _Terms:
        """Cost ``[n]`` (and, ``with_system``, ``H [n, 6, 6]``, ``g [n, 6]``) of objects ``idx`` rendered as ``r``."""
        cfg = self.config
        valid = sc.valid[idx]
        sd = signed_distance(r.mask) if sd is None else sd
        if with_system:
            reg = region_terms(sc.Pf[idx], sd, r.X_cam, sc.K_crop[idx], valid, cfg.region_band_px,
                               cfg.heaviside_slope)
            cost, H, g = cfg.weight_region * reg.cost, cfg.weight_region * reg.H, cfg.weight_region * reg.g
        else:
            cost = cfg.weight_region * region_energy(sc.Pf[idx], sd.phi, valid, cfg.heaviside_slope)
            H = g = None
        if cfg.weight_lines > 0:
            ln = contour_line_terms(sc.Pf[idx], sd, r.X_cam, sc.K_crop[idx], valid, cfg.line_length_px,
                                    cfg.line_scale_px, with_system)
            cost = cost + cfg.weight_lines * ln.cost
            if with_system:
                H = H + cfg.weight_lines * ln.H
                g = g + cfg.weight_lines * ln.g
        if cfg.weight_photometric > 0:
            w = (erode(r.mask, cfg.photo_edge_px) & valid).to(torch.float32)
            ph = photometric_terms(r.albedo, sc.observed[idx], sc.grad_u[idx], sc.grad_v[idx], r.X_cam,
                                   sc.K_crop[idx], w, cfg.photo_sigma, cfg.robust_loss, cfg.gain_bias, with_system)
            cost = cost + cfg.weight_photometric * ph.cost
            if with_system:
                H = H + cfg.weight_photometric * ph.H
                g = g + cfg.weight_photometric * ph.g
        return _Terms(cost=cost, H=H, g=g, sd=sd)

    def _own_energy(self, sc: _Scene, r: CropRender) -> tuple[torch.Tensor, torch.Tensor]:
        """Accept energy ``[M]`` (histograms from each render's own silhouette) and score ``[M]`` in 0..1."""
        cfg = self.config
        sd = signed_distance(r.mask)
        fg = r.mask & sc.valid
        band = sc.valid & ~r.mask & (sd.phi >= -cfg.bg_band_px)
        hf, hb = color_histograms(sc.raw, fg, band, cfg.hist_bins)
        Pf = posteriors(sc.raw, hf, hb, cfg.hist_bins)
        energy = cfg.weight_region * region_energy(Pf, sd.phi, sc.valid, cfg.heaviside_slope)
        if cfg.weight_photometric > 0:
            w = (erode(r.mask, cfg.photo_edge_px) & sc.valid).to(torch.float32)
            ph = photometric_terms(r.albedo, sc.observed, sc.grad_u, sc.grad_v, r.X_cam, sc.K_crop, w,
                                   cfg.photo_sigma, cfg.robust_loss, cfg.gain_bias, with_system=False)
            energy = energy + cfg.weight_photometric * ph.cost
        fgf, bandf = fg.to(Pf.dtype), band.to(Pf.dtype)
        fg_score = (Pf * fgf).sum(dim=(1, 2)) / fgf.sum(dim=(1, 2)).clamp_min(1)
        bg_score = ((Pf < 0.5).to(Pf.dtype) * bandf).sum(dim=(1, 2)) / bandf.sum(dim=(1, 2)).clamp_min(1)
        return energy, (fg_score * bg_score).clamp(0, 1)

    def _update_histograms(self, sc: _Scene, idx: torch.Tensor, r: CropRender) -> None:
        """Blend the histograms of objects ``idx`` towards those of their current silhouettes (rate
        ``hist_update_rate``) and recompute their posteriors, in place (RBOT's per-frame update)."""
        cfg = self.config
        mask = r.mask[idx]
        valid = sc.valid[idx]
        sd = signed_distance(mask)
        fg = mask & valid
        band = valid & ~mask & (sd.phi >= -cfg.bg_band_px)
        hf, hb = color_histograms(sc.raw[idx], fg, band, cfg.hist_bins)
        a = cfg.hist_update_rate
        sc.hf[idx] = (1 - a) * sc.hf[idx] + a * hf
        sc.hb[idx] = (1 - a) * sc.hb[idx] + a * hb
        sc.Pf[idx] = posteriors(sc.raw[idx], sc.hf[idx], sc.hb[idx], cfg.hist_bins)

    def _passes(self, sc: _Scene, r: CropRender, e: torch.Tensor, e_init: torch.Tensor,
                edge_init: torch.Tensor | None) -> torch.Tensor:
        """``[M]`` bool: the accept test of poses rendered as ``r`` (accept energy ``e``) against the initial poses
        (``e_init``, ``edge_init``; ``None`` when the edge check is off)."""
        cfg = self.config
        ok = e < e_init - cfg.accept_margin
        if edge_init is not None:
            ok &= self._edge_strength(sc, r) >= cfg.accept_edge_ratio * edge_init
        return ok

    def _edge_strength(self, sc: _Scene, r: CropRender) -> torch.Tensor:
        """``[M]`` mean image gradient across the rendered contour, ``|grad I . grad Phi|`` summed over channels, at
        the visible contour pixels (intensity per pixel; an evidence of alignment independent of the histograms)."""
        sd = signed_distance(r.mask)
        contour = (sd.phi == 0.5) & sc.valid & sd.has_contour[:, None, None]
        n = torch.stack([sd.grad_u, sd.grad_v], dim=1)  # [M, 2, S, S]
        n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-6)
        across = (sc.grad_u * n[:, :1] + sc.grad_v * n[:, 1:]).abs().sum(dim=1)  # [M, S, S]
        c = contour.to(across.dtype)
        return (across * c).sum(dim=(1, 2)) / c.sum(dim=(1, 2)).clamp_min(1)

    def _occlusion(self, proxies: list, T0: torch.Tensor, K_crop: torch.Tensor, image_index: torch.Tensor,
                   r0: CropRender) -> torch.Tensor:
        """``[M, S, S]`` bool: crop pixels where another object of the same image is visible in front."""
        M = T0.shape[0]
        occ = torch.zeros_like(r0.mask)
        img = image_index.cpu()
        for j in range(M):
            others = ((img == img[j]) & (torch.arange(M) != j)).nonzero().flatten()
            if len(others) == 0:
                continue
            od = others.to(T0.device)
            rr = render_proxies([proxies[j]] * len(others), T0[j:j + 1].expand(len(others), 4, 4), K_crop[od],
                                self.config.crop_size, with_albedo=False)
            front = rr.mask & (~r0.mask[od] | (rr.depth_m < r0.depth_m[od]))
            occ[od] |= front
        return occ

    # -- the loop --------------------------------------------------------------------------------------------

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        cfg = self.config
        t_start = time.perf_counter()
        S = cfg.crop_size
        dev = batch.images.device
        T0 = batch.init_poses.to(dev, torch.float32)
        M = T0.shape[0]
        proxies = [self._proxies[int(i)] for i in batch.object_ids.tolist()]
        diam = torch.tensor([p.diameter_m for p in proxies], dtype=torch.float32, device=dev)
        K_obj = batch.K.to(dev)[batch.image_index.to(dev)]
        boxes = sphere_crop_boxes(K_obj, T0, diam / 2, cfg.crop_margin)
        K_crop = crop_intrinsics(K_obj, boxes, S)
        raw, inside = sample_crops(batch.images.to(torch.float32), batch.image_index, boxes, S)
        observed, gu, gv = image_gradients(raw, cfg.blur_sigma)
        r0 = render_proxies(proxies, T0, K_crop, S)
        occluded = self._occlusion(proxies, T0, K_crop, batch.image_index, r0) if cfg.occlusion \
            else torch.zeros_like(r0.mask)
        valid = inside & ~occluded
        sd0 = signed_distance(r0.mask)
        fg = r0.mask & valid
        bg = valid & ~r0.mask & (sd0.phi >= -cfg.bg_band_px)
        hf, hb = color_histograms(raw, fg, bg, cfg.hist_bins)
        Pf = posteriors(raw, hf, hb, cfg.hist_bins)
        sc = _Scene(proxies=proxies, diameter=diam, K_crop=K_crop, observed=observed, grad_u=gu, grad_v=gv,
                    valid=valid, Pf=Pf, raw=raw, hf=hf, hb=hb)
        all_idx = torch.arange(M, device=dev)
        t_prep = time.perf_counter()
        t_render = t_terms = t_solve = 0.0

        cur = self._terms(sc, all_idx, r0)
        t_terms += time.perf_counter() - t_prep
        cur_T = T0.clone()
        cur_r = _select(r0, torch.ones(M, dtype=torch.bool, device=dev))
        lam = torch.full((M,), cfg.lm.lambda_init, dtype=torch.float64, device=dev)
        active = torch.ones(M, dtype=torch.bool, device=dev)
        moved = torch.zeros(M, dtype=torch.bool, device=dev)
        trace = [T0.clone()]
        for it in range(iterations):
            if not bool(active.any()):
                trace.append(cur_T.clone())
                continue
            t0 = time.perf_counter()
            idx = active.nonzero().flatten()
            if cfg.hist_update_every > 0 and it > 0 and it % cfg.hist_update_every == 0:
                self._update_histograms(sc, idx, cur_r)
                upd = self._terms(sc, idx, _select(cur_r, active))
                cur.cost[idx], cur.H[idx], cur.g[idx] = upd.cost, upd.H, upd.g
            xi = damped_step(cur.H[idx].double(), cur.g[idx].double(), lam[idx], cfg.lm.eps)
            allowed = ~step_too_large(xi, diam[idx].double(), cfg.lm)
            xi = torch.where(torch.isfinite(xi), xi, torch.zeros_like(xi))
            cand_T = apply_step(cur_T[idx].double(), xi).float()
            t1 = time.perf_counter()
            cand_r = self._render(sc, idx, cand_T)
            t2 = time.perf_counter()
            cand = self._terms(sc, idx, cand_r, with_system=False)
            accept, lam_new = lm_accept(cand.cost.double(), cur.cost[idx].double(), lam[idx], cfg.lm, allowed)
            lam[idx] = lam_new
            acc = idx[accept]
            if len(acc):
                a = accept
                sub = _select(cand_r, a)
                sys_new = self._terms(sc, acc, sub, with_system=True)
                cur_T[acc] = cand_T[a]
                cur.cost[acc] = sys_new.cost
                cur.H[acc] = sys_new.H
                cur.g[acc] = sys_new.g
                _assign(cur_r, acc, sub)
                moved[acc] = True
            t3 = time.perf_counter()
            small = accept & (xi.abs().amax(dim=1) < cfg.min_step)
            stop = small | (lam_new >= cfg.lm.lambda_max)
            active[idx[stop]] = False
            trace.append(cur_T.clone())
            t_solve += (t1 - t0) + (time.perf_counter() - t3)
            t_render += t2 - t1
            t_terms += t3 - t2

        t_acc0 = time.perf_counter()
        R0, Rc = T0[:, :3, :3].double(), cur_T[:, :3, :3].double()
        rot = rotation_angle(Rc @ R0.transpose(1, 2)) * 180.0 / math.pi
        dt = (cur_T[:, :3, 3] - T0[:, :3, 3]).double().norm(dim=1)
        diverged = ~torch.isfinite(cur_T).all(dim=(1, 2)) | (rot > cfg.max_rotation_deg) | (
            dt > cfg.max_translation_rel * diam.double())
        e_init, score_init = self._own_energy(sc, r0)
        e_ref, score_ref = self._own_energy(sc, cur_r)
        edge_init = self._edge_strength(sc, r0) if cfg.accept_edge_ratio > 0 else None
        better = self._passes(sc, cur_r, e_ref, e_init, edge_init)
        worse = moved & ~better
        status = torch.full((M,), int(RefineStatus.OK), dtype=torch.int8, device=dev)
        status[worse] = int(RefineStatus.KEPT_INITIAL_WORSE)
        status[diverged] = int(RefineStatus.DIVERGED)
        keep_init = status != int(RefineStatus.OK)
        poses = torch.where(keep_init[:, None, None], T0, cur_T)
        scores = torch.where(keep_init | ~moved, score_init, score_ref)
        if cfg.depth_fallback:
            fb = worse & ~diverged & (T0[:, 2, 3] > 0) & (cur_T[:, 2, 3] > 0)
            if bool(fb.any()):
                T_d = _along_ray(T0[fb], cur_T[fb, 2, 3] / T0[fb, 2, 3])
                if cfg.depth_fallback_check != "none":
                    fbi = fb.nonzero().flatten()
                    r_d = self._render(sc, fbi, T_d)
                    sub = _subscene(sc, fbi)
                    e_d, score_d = self._own_energy(sub, r_d)
                    if cfg.depth_fallback_check == "energy":
                        ok_d = e_d < e_init[fbi]
                    elif cfg.depth_fallback_check == "margin":
                        ok_d = e_d < e_init[fbi] - cfg.accept_margin
                    else:
                        ok_d = self._passes(sub, r_d, e_d, e_init[fbi], None if edge_init is None else edge_init[fbi])
                    fbi, T_d, score_d = fbi[ok_d], T_d[ok_d], score_d[ok_d]
                    fb = torch.zeros_like(fb)
                    fb[fbi] = True
                    scores[fbi] = score_d
                poses[fb] = T_d
                status[fb] = int(RefineStatus.DEPTH_ONLY)
        t_end = time.perf_counter()
        timings = RefineTimings(total_s=t_end - t_start, prepare_s=t_prep - t_start, render_s=t_render,
                                terms_s=t_terms, solve_s=t_solve, accept_s=t_end - t_acc0)
        return RefineOutput(poses=poses, scores=scores, trace=torch.stack(trace), status=status, timings=timings)


def _subscene(sc: _Scene, idx: torch.Tensor) -> _Scene:
    """The objects ``idx`` of ``sc`` (copies of the tensors)."""
    il = idx.tolist()
    return _Scene(proxies=[sc.proxies[i] for i in il], diameter=sc.diameter[idx], K_crop=sc.K_crop[idx],
                  observed=sc.observed[idx], grad_u=sc.grad_u[idx], grad_v=sc.grad_v[idx], valid=sc.valid[idx],
                  Pf=sc.Pf[idx], raw=sc.raw[idx], hf=sc.hf[idx], hb=sc.hb[idx])


def _along_ray(T: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``T [n, 4, 4]`` with its translation multiplied by ``scale [n]``: the object slides along the viewing ray
    through its origin (same rotation, same projection of the origin, depth times ``scale``)."""
    out = T.clone()
    out[:, :3, 3] = T[:, :3, 3] * scale[:, None]
    return out


def _select(r: CropRender, sel: torch.Tensor) -> CropRender:
    """A new :class:`CropRender` with the objects selected by the bool ``sel`` (copies)."""
    return CropRender(mask=r.mask[sel], depth_m=r.depth_m[sel], albedo=r.albedo[sel], X_cam=r.X_cam[sel])


def _assign(r: CropRender, dst: torch.Tensor, src: CropRender) -> None:
    """Overwrite objects ``dst`` of ``r`` (a render this module owns) with ``src``, in place."""
    r.mask[dst] = src.mask
    r.depth_m[dst] = src.depth_m
    r.albedo[dst] = src.albedo
    r.X_cam[dst] = src.X_cam
