"""The correspondence-line (contour) term of RGB-LM, after SRT3D (Stoiber et al. 2020-22), in a discrete form.

For every visible contour pixel ``c`` of the rendered silhouette (``Phi = 0.5``) a 1-D line through ``c`` along the
inward normal ``n = grad Phi / |grad Phi|`` is sampled at offsets ``s = -L .. L`` crop pixels (bilinear). From the
per-pixel foreground posteriors ``P_f`` along the line, the most likely foreground/background transition is the
step that maximises ``sum_{s <= k} log(1 - P_f(s)) + sum_{s > k} log P_f(s)`` (outside = background, inside =
foreground), refined to sub-pixel precision by a parabola through the best three steps. Its offset from the
current boundary (half a pixel outside ``c``) is the line's residual ``d`` (crop pixels, positive = the contour
should move inwards). Lines that cross invalid pixels (outside the image, occluded) or whose best transition lies
at the end of the line (no transition found) are dropped.

Moving the object by the left twist ``xi`` moves the contour point ``X_c`` by ``n . J_proj(X_c) xi`` along the line,
so the robust least-squares cost ``mean_lines rho(d)`` (Huber, scale ``scale_px``) has the Gauss-Newton system
``H = mean w a a^T``, ``g = -mean w a d`` with ``a = J_proj(X_c)^T n`` and IRLS weights ``w``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from iterpose.geometry import projection_jacobian_se3
from iterpose.refiners.rgb_lm.region import CONTOUR_PHI, SignedDistance

__all__ = ["LineTerms", "contour_line_terms"]

_PMIN = 0.02


@dataclass(frozen=True, eq=False)
class LineTerms:
    """Cost ``[N]`` (mean Huber loss of the residuals, crop px^2), system ``H [N, 6, 6]``, ``g [N, 6]`` and
    ``n_lines [N]`` (lines that count)."""

    cost: torch.Tensor
    H: torch.Tensor
    g: torch.Tensor
    n_lines: torch.Tensor


def _sample(img: torch.Tensor, u: torch.Tensor, v: torch.Tensor, mode: str) -> torch.Tensor:
    """``img [N, h, w]`` sampled at crop pixel coordinates ``u, v [N, P, L]`` (pixel (i, j) centre at u=j, v=i)."""
    N, h, w = img.shape
    grid = torch.stack([2 * u / max(w - 1, 1) - 1, 2 * v / max(h - 1, 1) - 1], dim=-1)
    return F.grid_sample(img[:, None], grid, mode=mode, padding_mode="zeros", align_corners=True)[:, 0]


def contour_line_terms(Pf: torch.Tensor, sd: SignedDistance, X_cam: torch.Tensor, K_crop: torch.Tensor,
                       valid: torch.Tensor, length_px: int, scale_px: float, with_system: bool = True
                       ) -> LineTerms:
    """Cost and normal equations of the correspondence-line term (see the module docstring).

    Args:
        Pf: ``[N, h, w]`` foreground posteriors. sd: signed distance of the current render.
        X_cam: ``[N, h, w, 3]`` rendered surface points (camera frame, metres).
        K_crop: ``[N, 3, 3]`` crop intrinsics. valid: ``[N, h, w]`` bool pixels that count.
        length_px: half length ``L`` of each line (crop pixels). scale_px: Huber scale of the residuals.
        with_system: also build ``H`` and ``g`` (else zeros).

    Returns:
        :class:`LineTerms`; objects without any usable line get cost 0 and a zero system.
    """
    N, h, w = Pf.shape
    dev, dt = Pf.device, Pf.dtype
    contour = (sd.phi == CONTOUR_PHI) & valid & sd.has_contour[:, None, None]
    nu, nv = sd.grad_u, sd.grad_v
    norm = torch.sqrt(nu * nu + nv * nv)
    contour &= norm > 1e-6
    counts = contour.sum(dim=(1, 2))
    P = max(int(counts.max()) if N else 0, 1)
    # pack the contour pixels of each object into [N, P] (padded, `used` marks real ones)
    order = torch.argsort((~contour).reshape(N, -1).to(torch.int8), dim=1, stable=True)[:, :P]
    used = torch.arange(P, device=dev)[None] < counts[:, None]
    ii, jj = order // w, order % w
    bidx = torch.arange(N, device=dev)[:, None]
    n_u = (nu / norm.clamp_min(1e-6))[bidx, ii, jj]
    n_v = (nv / norm.clamp_min(1e-6))[bidx, ii, jj]
    s = torch.arange(-length_px, length_px + 1, device=dev, dtype=dt)  # [L]
    u = jj.to(dt)[..., None] + s * n_u[..., None]  # [N, P, L]
    v = ii.to(dt)[..., None] + s * n_v[..., None]
    p = _sample(Pf, u, v, "bilinear").clamp(_PMIN, 1 - _PMIN)
    ok = _sample(valid.to(dt), u, v, "nearest") > 0.5
    inside = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
    line_ok = (ok & inside).all(dim=2) & used
    lb, lf = torch.log1p(-p), torch.log(p)
    # score of a step after sample k (k = 0 .. 2L-1): background up to k, foreground after
    cb = torch.cumsum(lb, dim=2)[..., :-1]
    cf = lf.sum(dim=2, keepdim=True) - torch.cumsum(lf, dim=2)[..., :-1]
    score = cb + cf  # [N, P, 2L]
    k = score.argmax(dim=2)
    nk = score.shape[2]
    interior = (k > 0) & (k < nk - 1)
    km, kp = (k - 1).clamp(0, nk - 1), (k + 1).clamp(0, nk - 1)
    y0, y1, y2 = (score.gather(2, t[..., None])[..., 0] for t in (km, k, kp))
    den = y0 - 2 * y1 + y2
    off = torch.where(interior & (den < -1e-9), 0.5 * (y0 - y2) / den.clamp(max=-1e-9), torch.zeros_like(y1))
    t = s[k] + 0.5 + off.clamp(-0.5, 0.5)  # transition offset from the contour pixel centre
    d = t + 0.5  # the current boundary is half a pixel outside the contour pixel centre
    line_ok &= interior
    m = line_ok.to(dt)
    n_lines = m.sum(dim=1)
    ad = d.abs()
    rho = torch.where(ad <= scale_px, 0.5 * d * d, scale_px * (ad - 0.5 * scale_px))
    cost = (rho * m).sum(dim=1) / n_lines.clamp_min(1)
    H = torch.zeros(N, 6, 6, device=dev, dtype=dt)
    g = torch.zeros(N, 6, device=dev, dtype=dt)
    if with_system:
        Xc = X_cam[bidx, ii, jj]  # [N, P, 3]
        Jp = projection_jacobian_se3(K_crop.to(dt), Xc)  # [N, P, 2, 6]
        a = n_u[..., None] * Jp[:, :, 0] + n_v[..., None] * Jp[:, :, 1]  # [N, P, 6]
        wgt = m * torch.where(ad <= scale_px, torch.ones_like(ad), scale_px / ad.clamp_min(1e-9))
        a = torch.where(torch.isfinite(a), a, torch.zeros_like(a))
        H = (a * wgt[..., None]).transpose(1, 2) @ a / n_lines.clamp_min(1)[:, None, None]
        g = -(a * (wgt * d)[..., None]).sum(dim=1) / n_lines.clamp_min(1)[:, None]
    return LineTerms(cost=cost, H=H, g=g, n_lines=n_lines)
