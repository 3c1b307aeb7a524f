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
from dataclasses import dataclass, replace
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
    CONTOUR_PHI,
    SignedDistance,
    color_histograms,
    posteriors,
    region_energy,
    region_terms,
    signed_distance,
)

__all__ = ["AcceptTest", "RgbLM"]

#: A pixel is classified background when its foreground posterior is below this (``P_f < P_b``).
_BACKGROUND_POSTERIOR_BELOW = 0.5
#: Floor of the contour normal's length when normalising it (pixels; the normal of a flat signed distance is 0).
_NORMAL_LENGTH_MIN = 1e-6


@dataclass(frozen=True, eq=False)
class _Crops:
    """Per-object data of one refine call (M objects, S x S crops). Never changed in place: the histogram update
    (``hist_update_every``) builds a new one with :func:`dataclasses.replace`."""

    proxies: list
    diameter: torch.Tensor  # [M] metres
    K_crop: torch.Tensor  # [M, 3, 3]
    observed: torch.Tensor  # [M, 3, S, S] blurred observed crop
    grad_u: torch.Tensor  # [M, 3, S, S] image gradient of `observed` along columns
    grad_v: torch.Tensor  # [M, 3, S, S] ... along rows
    valid: torch.Tensor  # [M, S, S] bool: in the image and not occluded
    Pf: torch.Tensor  # [M, S, S] foreground posterior (initial silhouette; updated by hist_update_every)
    raw: torch.Tensor  # [M, 3, S, S] observed crop (unblurred)
    hist_fg: torch.Tensor  # [M, bins^3] foreground histogram
    hist_bg: torch.Tensor  # [M, bins^3] background histogram


@dataclass(frozen=True, eq=False)
class _Terms:
    """Cost ``[n]`` of n objects and, when built ``with_system``, the normal equations ``H [n, 6, 6]``, ``g [n, 6]``."""

    cost: torch.Tensor
    H: torch.Tensor | None
    g: torch.Tensor | None


@dataclass(frozen=True, eq=False)
class AcceptTest:
    """:meth:`RgbLM.accept_test`'s outcome for M objects.

    Attributes:
        passed: ``[M]`` bool: the candidate explains the image better than the reference pose.
        scores, reference_scores: ``[M]`` RGB-LM scores (0..1) of the candidate and of the reference pose.
    """

    passed: torch.Tensor
    scores: torch.Tensor
    reference_scores: torch.Tensor


@dataclass(frozen=True, eq=False)
class _SilhouetteHistograms:
    """Colour histograms of the observed pixels inside a rendered silhouette and of a band outside it."""

    sd: SignedDistance  # signed distance to the rendered contour
    foreground: torch.Tensor  # [M, S, S] bool: valid pixels inside the silhouette
    band: torch.Tensor  # [M, S, S] bool: valid pixels outside it, within bg_band_px of the contour
    hist_fg: torch.Tensor  # [M, bins^3]
    hist_bg: torch.Tensor  # [M, bins^3]


@dataclass(eq=False)
class _LMState:
    """The state of the LM loop: tensors this module owns, updated in place by :meth:`RgbLM._lm_iteration`."""

    T: torch.Tensor  # [M, 4, 4] current poses
    cost: torch.Tensor  # [M] cost at the current poses
    H: torch.Tensor  # [M, 6, 6]
    g: torch.Tensor  # [M, 6]
    render: CropRender  # the current poses rendered (replaced, never written into)
    lam: torch.Tensor  # [M] float64 damping
    active: torch.Tensor  # [M] bool: still iterating
    moved: torch.Tensor  # [M] bool: some step was accepted
    trace: list  # [T0, pose after iteration 1, ...]


@dataclass
class _Clock:
    """Seconds spent in the parts of the LM loop (for :class:`RefineTimings`)."""

    render_s: float = 0.0
    terms_s: float = 0.0
    solve_s: float = 0.0


@dataclass(frozen=True, eq=False)
class _Decision:
    """The accept test's outcome for every object (before the depth fallback)."""

    poses: torch.Tensor  # [M, 4, 4] the pose to return
    scores: torch.Tensor  # [M]
    status: torch.Tensor  # [M] int8 RefineStatus
    worse: torch.Tensor  # [M] bool: moved but failed the accept test
    diverged: torch.Tensor  # [M] bool
    e_init: torch.Tensor  # [M] accept energy of the initial poses
    edge_init: torch.Tensor | None  # [M] edge strength of the initial poses (None: edge check off)


def _silhouette_histograms(raw: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor, cfg: RgbLMConfig
                           ) -> _SilhouetteHistograms:
    """Histograms of the valid observed pixels ``raw [M, 3, S, S]`` inside the silhouettes ``mask [M, S, S]`` and
    in the band of ``cfg.bg_band_px`` pixels outside them (the one histogram set-up of RGB-LM)."""
    sd = signed_distance(mask)
    foreground = mask & valid
    band = valid & ~mask & (sd.phi >= -cfg.bg_band_px)
    hist_fg, hist_bg = color_histograms(raw, foreground, band, cfg.hist_bins)
    return _SilhouetteHistograms(sd=sd, foreground=foreground, band=band, hist_fg=hist_fg, hist_bg=hist_bg)


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

    def _render(self, crops: _Crops, idx: torch.Tensor, T: torch.Tensor) -> CropRender:
        return render_proxies([crops.proxies[i] for i in idx.tolist()], T, crops.K_crop[idx], self.config.crop_size)

    def _terms(self, crops: _Crops, idx: torch.Tensor, r: CropRender, with_system: bool = True) -> _Terms:
        """Cost ``[n]`` (and, ``with_system``, ``H [n, 6, 6]``, ``g [n, 6]``) of objects ``idx`` rendered as ``r``."""
        cfg = self.config
        valid = crops.valid[idx]
        sd = signed_distance(r.mask)
        if with_system:
            region = region_terms(crops.Pf[idx], sd, r.X_cam, crops.K_crop[idx], valid, cfg.region_band_px,
                                  cfg.heaviside_slope)
            cost, H, g = cfg.weight_region * region.cost, cfg.weight_region * region.H, cfg.weight_region * region.g
        else:
            cost = cfg.weight_region * region_energy(crops.Pf[idx], sd.phi, valid, cfg.heaviside_slope)
            H = g = None
        if cfg.weight_lines > 0:
            lines = contour_line_terms(crops.Pf[idx], sd, r.X_cam, crops.K_crop[idx], valid, cfg.line_length_px,
                                       cfg.line_scale_px, with_system)
            cost = cost + cfg.weight_lines * lines.cost
            if with_system:
                H = H + cfg.weight_lines * lines.H
                g = g + cfg.weight_lines * lines.g
        if cfg.weight_photometric > 0:
            weight = (erode(r.mask, cfg.photo_edge_px) & valid).to(torch.float32)
            photo = photometric_terms(r.albedo, crops.observed[idx], crops.grad_u[idx], crops.grad_v[idx], r.X_cam,
                                      crops.K_crop[idx], weight, cfg.photo_sigma, cfg.robust_loss, cfg.gain_bias,
                                      with_system)
            cost = cost + cfg.weight_photometric * photo.cost
            if with_system:
                H = H + cfg.weight_photometric * photo.H
                g = g + cfg.weight_photometric * photo.g
        return _Terms(cost=cost, H=H, g=g)

    def _own_energy(self, crops: _Crops, r: CropRender) -> tuple[torch.Tensor, torch.Tensor]:
        """Accept energy ``[M]`` (histograms from each render's own silhouette) and score ``[M]`` in 0..1."""
        cfg = self.config
        own = _silhouette_histograms(crops.raw, r.mask, crops.valid, cfg)
        Pf = posteriors(crops.raw, own.hist_fg, own.hist_bg, cfg.hist_bins)
        energy = cfg.weight_region * region_energy(Pf, own.sd.phi, crops.valid, cfg.heaviside_slope)
        if cfg.weight_photometric > 0:
            weight = (erode(r.mask, cfg.photo_edge_px) & crops.valid).to(torch.float32)
            photo = photometric_terms(r.albedo, crops.observed, crops.grad_u, crops.grad_v, r.X_cam, crops.K_crop,
                                      weight, cfg.photo_sigma, cfg.robust_loss, cfg.gain_bias, with_system=False)
            energy = energy + cfg.weight_photometric * photo.cost
        fg, band = own.foreground.to(Pf.dtype), own.band.to(Pf.dtype)
        fg_score = (Pf * fg).sum(dim=(1, 2)) / fg.sum(dim=(1, 2)).clamp_min(1)
        is_bg = (Pf < _BACKGROUND_POSTERIOR_BELOW).to(Pf.dtype)
        bg_score = (is_bg * band).sum(dim=(1, 2)) / band.sum(dim=(1, 2)).clamp_min(1)
        return energy, (fg_score * bg_score).clamp(0, 1)

    def _updated_histograms(self, crops: _Crops, idx: torch.Tensor, r: CropRender) -> _Crops:
        """``crops`` with the histograms of objects ``idx`` blended towards those of their current silhouettes
        (rate ``hist_update_rate``) and their posteriors recomputed (RBOT's per-frame update)."""
        cfg = self.config
        current = _silhouette_histograms(crops.raw[idx], r.mask[idx], crops.valid[idx], cfg)
        rate = cfg.hist_update_rate
        hist_fg, hist_bg, Pf = crops.hist_fg.clone(), crops.hist_bg.clone(), crops.Pf.clone()
        hist_fg[idx] = (1 - rate) * crops.hist_fg[idx] + rate * current.hist_fg
        hist_bg[idx] = (1 - rate) * crops.hist_bg[idx] + rate * current.hist_bg
        Pf[idx] = posteriors(crops.raw[idx], hist_fg[idx], hist_bg[idx], cfg.hist_bins)
        return replace(crops, hist_fg=hist_fg, hist_bg=hist_bg, Pf=Pf)

    def _passes(self, crops: _Crops, r: CropRender, e: torch.Tensor, e_init: torch.Tensor,
                edge_init: torch.Tensor | None) -> torch.Tensor:
        """``[M]`` bool: the accept test of poses rendered as ``r`` (accept energy ``e``) against the initial poses
        (``e_init``, ``edge_init``; ``None`` when the edge check is off)."""
        cfg = self.config
        ok = e < e_init - cfg.accept_margin
        if edge_init is not None:
            ok &= self._edge_strength(crops, r) >= cfg.accept_edge_ratio * edge_init
        return ok

    def _edge_strength(self, crops: _Crops, r: CropRender) -> torch.Tensor:
        """``[M]`` mean image gradient across the rendered contour, ``|grad I . grad Phi|`` summed over channels, at
        the visible contour pixels (intensity per pixel; an evidence of alignment independent of the histograms)."""
        sd = signed_distance(r.mask)
        contour = (sd.phi == CONTOUR_PHI) & crops.valid & sd.has_contour[:, None, None]
        normal = torch.stack([sd.grad_u, sd.grad_v], dim=1)  # [M, 2, S, S]
        normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(_NORMAL_LENGTH_MIN)
        across = (crops.grad_u * normal[:, :1] + crops.grad_v * normal[:, 1:]).abs().sum(dim=1)  # [M, S, S]
        c = contour.to(across.dtype)
        return (across * c).sum(dim=(1, 2)) / c.sum(dim=(1, 2)).clamp_min(1)

    def _occlusion(self, proxies: list, T0: torch.Tensor, K_crop: torch.Tensor, image_index: torch.Tensor,
                   r0: CropRender) -> torch.Tensor:
        """``[M, S, S]`` bool: crop pixels where another object of the same image is visible in front."""
        M = T0.shape[0]
        occluded = torch.zeros_like(r0.mask)
        img = image_index.cpu()
        for j in range(M):
            others = ((img == img[j]) & (torch.arange(M) != j)).nonzero().flatten()
            if len(others) == 0:
                continue
            others_dev = others.to(T0.device)
            # object j rendered into the crops of the others
            in_others = render_proxies([proxies[j]] * len(others), T0[j:j + 1].expand(len(others), 4, 4),
                                       K_crop[others_dev], self.config.crop_size, with_albedo=False)
            front = in_others.mask & (~r0.mask[others_dev] | (in_others.depth_m < r0.depth_m[others_dev]))
            occluded[others_dev] |= front
        return occluded

    # -- the stages: prepare -> LM loop -> accept -> depth fallback ------------------------------------------

    def _refine(self, batch: RefineBatch, iterations: int) -> RefineOutput:
        t_start = time.perf_counter()
        T0, crops, r0 = self._prepare(batch)
        t_prep = time.perf_counter()
        clock = _Clock()
        state = self._initial_state(crops, T0, r0)
        clock.terms_s += time.perf_counter() - t_prep
        for it in range(iterations):
            crops = self._lm_iteration(crops, state, it, clock)
        t_accept = time.perf_counter()
        decision = self._accept(crops, T0, r0, state)
        poses, scores, status = decision.poses, decision.scores, decision.status
        if self.config.depth_fallback:
            poses, scores, status = self._depth_fallback(crops, T0, state.T, decision)
        t_end = time.perf_counter()
        timings = RefineTimings(total_s=t_end - t_start, prepare_s=t_prep - t_start, render_s=clock.render_s,
                                terms_s=clock.terms_s, solve_s=clock.solve_s, accept_s=t_end - t_accept)
        return RefineOutput(poses=poses, scores=scores, trace=torch.stack(state.trace), status=status,
                            timings=timings)

    def accept_test(self, batch: RefineBatch, candidates: torch.Tensor) -> AcceptTest:
        """RGB-LM's accept test (the one that ends :meth:`refine`) of any poses against ``batch.init_poses``: a
        training-free check of another refiner's results (the ``deepim+rgb-lm`` cascade's guard).

        Args:
            batch: checked inputs (:class:`RefineBatch`); its ``init_poses`` are the reference poses.
            candidates: ``[M, 4, 4]`` poses to test, one per object of ``batch``.
        """
        T0, crops, r0 = self._prepare(batch)
        T = candidates.to(T0)
        finite = torch.isfinite(T).all(dim=(1, 2))
        T = torch.where(finite[:, None, None], T, T0)
        test, _, _ = self._compare(crops, r0, self._render(crops, torch.arange(T0.shape[0], device=T0.device), T))
        return AcceptTest(passed=test.passed & finite, scores=test.scores, reference_scores=test.reference_scores)

    def score_poses(self, batch: RefineBatch, candidates: torch.Tensor) -> torch.Tensor:
        """RGB-LM's score (0..1, higher: the silhouette separates the image's colours better; the ``scores`` of
        :meth:`accept_test`) of C candidate poses per object, in crops around ``batch.init_poses`` prepared once.

        Args:
            batch: checked inputs (:class:`RefineBatch`); its ``init_poses`` place the crops.
            candidates: ``[C, M, 4, 4]`` poses, C per object of ``batch``.

        Returns:
            ``[C, M]`` float32 scores; a candidate with non-finite entries scores -1.
        """
        T0, crops, _ = self._prepare(batch)
        idx = torch.arange(T0.shape[0], device=T0.device)
        out = []
        for T in candidates.to(T0):
            finite = torch.isfinite(T).all(dim=(1, 2))
            _, score = self._own_energy(crops, self._render(crops, idx, torch.where(finite[:, None, None], T, T0)))
            out.append(torch.where(finite, score, torch.full_like(score, -1.0)))
        return torch.stack(out)

    def _compare(self, crops: _Crops, r_ref: CropRender, r: CropRender
                 ) -> tuple[AcceptTest, torch.Tensor, torch.Tensor | None]:
        """The accept test of the poses rendered as ``r`` against those rendered as ``r_ref``, plus the reference
        poses' accept energy ``[M]`` and edge strength ``[M]`` (None when the edge check is off)."""
        e_ref, score_ref = self._own_energy(crops, r_ref)
        e, score = self._own_energy(crops, r)
        edge_ref = self._edge_strength(crops, r_ref) if self.config.accept_edge_ratio > 0 else None
        passed = self._passes(crops, r, e, e_ref, edge_ref)
        return AcceptTest(passed=passed, scores=score, reference_scores=score_ref), e_ref, edge_ref

    def _prepare(self, batch: RefineBatch) -> tuple[torch.Tensor, _Crops, CropRender]:
        """``(T0 [M, 4, 4], crops, render of T0)``: crops around the initial poses, occlusion by the other objects
        of the same image, and the colour histograms of the initial silhouettes."""
        cfg = self.config
        dev = batch.images.device
        T0 = batch.init_poses.to(dev, torch.float32)
        proxies = [self._proxies[int(i)] for i in batch.object_ids.tolist()]
        diameter = torch.tensor([p.diameter_m for p in proxies], dtype=torch.float32, device=dev)
        K_obj = batch.K.to(dev)[batch.image_index.to(dev)]
        boxes = sphere_crop_boxes(K_obj, T0, diameter / 2, cfg.crop_margin)
        K_crop = crop_intrinsics(K_obj, boxes, cfg.crop_size)
        raw, inside = sample_crops(batch.images.to(torch.float32), batch.image_index, boxes, cfg.crop_size)
        observed, grad_u, grad_v = image_gradients(raw, cfg.blur_sigma)
        r0 = render_proxies(proxies, T0, K_crop, cfg.crop_size)
        occluded = self._occlusion(proxies, T0, K_crop, batch.image_index, r0) if cfg.occlusion \
            else torch.zeros_like(r0.mask)
        valid = inside & ~occluded
        initial = _silhouette_histograms(raw, r0.mask, valid, cfg)
        Pf = posteriors(raw, initial.hist_fg, initial.hist_bg, cfg.hist_bins)
        crops = _Crops(proxies=proxies, diameter=diameter, K_crop=K_crop, observed=observed, grad_u=grad_u,
                       grad_v=grad_v, valid=valid, Pf=Pf, raw=raw, hist_fg=initial.hist_fg, hist_bg=initial.hist_bg)
        return T0, crops, r0

    def _initial_state(self, crops: _Crops, T0: torch.Tensor, r0: CropRender) -> _LMState:
        M, dev = T0.shape[0], T0.device
        terms = self._terms(crops, torch.arange(M, device=dev), r0)
        return _LMState(
            T=T0.clone(), cost=terms.cost, H=terms.H, g=terms.g,
            render=_select(r0, torch.ones(M, dtype=torch.bool, device=dev)),
            lam=torch.full((M,), self.config.lm.lambda_init, dtype=torch.float64, device=dev),
            active=torch.ones(M, dtype=torch.bool, device=dev), moved=torch.zeros(M, dtype=torch.bool, device=dev),
            trace=[T0.clone()],
        )

    def _lm_iteration(self, crops: _Crops, state: _LMState, it: int, clock: _Clock) -> _Crops:
        """One LM iteration of the active objects: updates ``state`` and returns the crops (new histograms when
        ``hist_update_every`` says so)."""
        cfg = self.config
        if not bool(state.active.any()):
            state.trace.append(state.T.clone())
            return crops
        t0 = time.perf_counter()
        idx = state.active.nonzero().flatten()
        if cfg.hist_update_every > 0 and it > 0 and it % cfg.hist_update_every == 0:
            crops = self._updated_histograms(crops, idx, state.render)
            refreshed = self._terms(crops, idx, _select(state.render, state.active))
            state.cost[idx], state.H[idx], state.g[idx] = refreshed.cost, refreshed.H, refreshed.g
        xi = damped_step(state.H[idx].double(), state.g[idx].double(), state.lam[idx], cfg.lm.eps)
        allowed = ~step_too_large(xi, crops.diameter[idx].double(), cfg.lm)
        xi = torch.where(torch.isfinite(xi), xi, torch.zeros_like(xi))
        cand_T = apply_step(state.T[idx].double(), xi).float()
        t1 = time.perf_counter()
        cand_render = self._render(crops, idx, cand_T)
        t2 = time.perf_counter()
        cand = self._terms(crops, idx, cand_render, with_system=False)
        accept, lam_new = lm_accept(cand.cost.double(), state.cost[idx].double(), state.lam[idx], cfg.lm, allowed)
        state.lam[idx] = lam_new
        accepted = idx[accept]
        if len(accepted):
            accepted_render = _select(cand_render, accept)
            system = self._terms(crops, accepted, accepted_render, with_system=True)
            state.T[accepted] = cand_T[accept]
            state.cost[accepted], state.H[accepted], state.g[accepted] = system.cost, system.H, system.g
            state.render = _with_objects(state.render, accepted, accepted_render)
            state.moved[accepted] = True
        t3 = time.perf_counter()
        converged = accept & (xi.abs().amax(dim=1) < cfg.min_step)
        stop = converged | (lam_new >= cfg.lm.lambda_max)
        state.active[idx[stop]] = False
        state.trace.append(state.T.clone())
        clock.solve_s += (t1 - t0) + (time.perf_counter() - t3)
        clock.render_s += t2 - t1
        clock.terms_s += t3 - t2
        return crops

    def _accept(self, crops: _Crops, T0: torch.Tensor, r0: CropRender, state: _LMState) -> _Decision:
        """The accept test (see the module docstring): the refined pose, the initial one (KEPT_INITIAL_WORSE) or
        DIVERGED, per object."""
        cfg = self.config
        T_ref = state.T
        R0, R_ref = T0[:, :3, :3].double(), T_ref[:, :3, :3].double()
        rot_deg = rotation_angle(R_ref @ R0.transpose(1, 2)) * 180.0 / math.pi
        dt = (T_ref[:, :3, 3] - T0[:, :3, 3]).double().norm(dim=1)
        diverged = ~torch.isfinite(T_ref).all(dim=(1, 2)) | (rot_deg > cfg.max_rotation_deg) | (
            dt > cfg.max_translation_rel * crops.diameter.double())
        test, e_init, edge_init = self._compare(crops, r0, state.render)
        worse = state.moved & ~test.passed
        status = torch.full((T0.shape[0],), int(RefineStatus.OK), dtype=torch.int8, device=T0.device)
        status[worse] = int(RefineStatus.KEPT_INITIAL_WORSE)
        status[diverged] = int(RefineStatus.DIVERGED)
        keep_init = status != int(RefineStatus.OK)
        poses = torch.where(keep_init[:, None, None], T0, T_ref)
        scores = torch.where(keep_init | ~state.moved, test.reference_scores, test.scores)
        return _Decision(poses=poses, scores=scores, status=status, worse=worse, diverged=diverged, e_init=e_init,
                         edge_init=edge_init)

    def _depth_fallback(self, crops: _Crops, T0: torch.Tensor, T_ref: torch.Tensor, decision: _Decision
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(poses, scores, status)`` with DEPTH_ONLY where the initial pose slid to the refined depth passes
        ``depth_fallback_check`` (objects that moved, failed the accept test and did not diverge)."""
        cfg = self.config
        fallback = decision.worse & ~decision.diverged & (T0[:, 2, 3] > 0) & (T_ref[:, 2, 3] > 0)
        if not bool(fallback.any()):
            return decision.poses, decision.scores, decision.status
        poses, scores, status = decision.poses.clone(), decision.scores.clone(), decision.status.clone()
        T_depth = _along_ray(T0[fallback], T_ref[fallback, 2, 3] / T0[fallback, 2, 3])
        if cfg.depth_fallback_check != "none":
            fallback_idx = fallback.nonzero().flatten()
            r_depth = self._render(crops, fallback_idx, T_depth)
            fallback_crops = _crops_subset(crops, fallback_idx)
            e_depth, score_depth = self._own_energy(fallback_crops, r_depth)
            edge_init = None if decision.edge_init is None else decision.edge_init[fallback_idx]
            passed = self._depth_check(fallback_crops, r_depth, e_depth, decision.e_init[fallback_idx], edge_init)
            fallback_idx, T_depth, score_depth = fallback_idx[passed], T_depth[passed], score_depth[passed]
            fallback = torch.zeros_like(fallback)
            fallback[fallback_idx] = True
            scores[fallback_idx] = score_depth
        poses[fallback] = T_depth
        status[fallback] = int(RefineStatus.DEPTH_ONLY)
        return poses, scores, status

    def _depth_check(self, crops: _Crops, r: CropRender, e: torch.Tensor, e_init: torch.Tensor,
                     edge_init: torch.Tensor | None) -> torch.Tensor:
        """``[n]`` bool: ``depth_fallback_check`` ("energy", "margin" or "accept") of the depth-only poses."""
        check = self.config.depth_fallback_check
        if check == "energy":
            return e < e_init
        if check == "margin":
            return e < e_init - self.config.accept_margin
        return self._passes(crops, r, e, e_init, edge_init)


def _crops_subset(crops: _Crops, idx: torch.Tensor) -> _Crops:
    """The objects ``idx`` of ``crops`` (copies of the tensors)."""
    il = idx.tolist()
    return _Crops(proxies=[crops.proxies[i] for i in il], diameter=crops.diameter[idx], K_crop=crops.K_crop[idx],
                  observed=crops.observed[idx], grad_u=crops.grad_u[idx], grad_v=crops.grad_v[idx],
                  valid=crops.valid[idx], Pf=crops.Pf[idx], raw=crops.raw[idx], hist_fg=crops.hist_fg[idx],
                  hist_bg=crops.hist_bg[idx])


def _along_ray(T: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``T [n, 4, 4]`` with its translation multiplied by ``scale [n]``: the object slides along the viewing ray
    through its origin (same rotation, same projection of the origin, depth times ``scale``)."""
    out = T.clone()
    out[:, :3, 3] = T[:, :3, 3] * scale[:, None]
    return out


def _select(r: CropRender, sel: torch.Tensor) -> CropRender:
    """A new :class:`CropRender` with the objects selected by the bool ``sel`` (copies)."""
    return CropRender(mask=r.mask[sel], depth_m=r.depth_m[sel], albedo=r.albedo[sel], X_cam=r.X_cam[sel])


def _with_objects(r: CropRender, dst: torch.Tensor, src: CropRender) -> CropRender:
    """A new :class:`CropRender`: ``r`` with objects ``dst`` replaced by ``src`` (``r`` is not changed)."""
    mask, depth_m, albedo, X_cam = r.mask.clone(), r.depth_m.clone(), r.albedo.clone(), r.X_cam.clone()
    mask[dst], depth_m[dst], albedo[dst], X_cam[dst] = src.mask, src.depth_m, src.albedo, src.X_cam
    return CropRender(mask=mask, depth_m=depth_m, albedo=albedo, X_cam=X_cam)
