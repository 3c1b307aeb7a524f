"""The region (contour) term of RGB-LM, after PWP3D (Prisacariu & Reid 2012) and RBOT (Tjaden et al. 2018).

Colour histograms of the foreground (observed pixels inside the rendered silhouette) and of the background (a band
outside it) give per-pixel posteriors ``P_f = h_f / (h_f + h_b)``, ``P_b = 1 - P_f``. With ``Phi`` the signed
distance (crop pixels) to the rendered contour, positive inside, and the smoothed Heaviside
``He(Phi) = 1/2 + atan(s Phi) / pi``, the energy of a pose is ``E = mean_p -log(He P_f + (1 - He) P_b)`` over the
crop pixels that are inside the image and not occluded (a fixed set, so energies of different poses compare).

Moving the object by the left twist ``xi`` moves the contour point ``X_c`` nearest to pixel ``p`` by
``J_proj(X_c) xi``, so ``dPhi_p/dxi = -grad Phi_p . J_proj(X_c)`` and
``dE_p/dxi = (P_f - P_b) delta(Phi) / (He P_f + (1 - He) P_b) * grad Phi . J_proj(X_c)``. As in RBOT, these
per-pixel gradients ``J_p`` (pixels in a band ``|Phi| <= band``) give ``H = mean J^T J`` and ``g = mean J``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from iterpose.geometry import projection_jacobian_se3

__all__ = ["color_histograms", "posteriors", "SignedDistance", "signed_distance", "RegionTerms", "region_terms",
           "region_energy", "CONTOUR_PHI"]

_EPS = 1e-6

#: ``phi`` of a contour pixel: its centre lies half a pixel inside the silhouette's boundary.
CONTOUR_PHI = 0.5


def _bin_index(img: torch.Tensor, bins: int) -> torch.Tensor:
    """``[N, h, w]`` int64 joint RGB bin of ``img [N, 3, h, w]`` in 0..1."""
    q = (img.clamp(0, 1) * bins).long().clamp_(0, bins - 1)
    return (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]


def color_histograms(img: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, bins: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised joint RGB histograms ``(h_f, h_b)`` each ``[N, bins^3]`` of ``img [N, 3, h, w]`` (0..1) over the
    pixels of the bool masks ``fg``, ``bg`` ``[N, h, w]`` (a small floor keeps unseen colours possible)."""
    N = img.shape[0]
    nb = bins ** 3
    idx = _bin_index(img, bins) + (torch.arange(N, device=img.device) * nb)[:, None, None]
    hf = torch.bincount(idx[fg], minlength=N * nb).view(N, nb).to(img.dtype)
    hb = torch.bincount(idx[bg], minlength=N * nb).view(N, nb).to(img.dtype)
    hf = hf / hf.sum(1, keepdim=True).clamp_min(1) + _EPS
    hb = hb / hb.sum(1, keepdim=True).clamp_min(1) + _EPS
    return hf, hb


def posteriors(img: torch.Tensor, hf: torch.Tensor, hb: torch.Tensor, bins: int) -> torch.Tensor:
    """``P_f [N, h, w]`` = ``h_f / (h_f + h_b)`` at each pixel's colour (``P_b = 1 - P_f``)."""
    idx = _bin_index(img, bins)
    N = img.shape[0]
    f = torch.gather(hf, 1, idx.view(N, -1)).view_as(idx)
    b = torch.gather(hb, 1, idx.view(N, -1)).view_as(idx)
    return f / (f + b)


@dataclass(frozen=True, eq=False)
class SignedDistance:
    """Signed distance to the rendered contour, per crop.

    Attributes:
        phi: ``[N, h, w]`` crop pixels, positive inside the silhouette (a contour pixel has 0.5, the outside pixel
            next to it -0.5). ``-(h + w)`` everywhere when the silhouette is empty.
        nearest: ``[N, h, w]`` int64 flat index (``i * w + j``) of the nearest contour pixel (0 if none).
        grad_u, grad_v: ``[N, h, w]`` central differences of ``phi`` along columns and rows.
        has_contour: ``[N]`` bool.
    """

    phi: torch.Tensor
    nearest: torch.Tensor
    grad_u: torch.Tensor
    grad_v: torch.Tensor
    has_contour: torch.Tensor


_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)


def signed_distance(mask: torch.Tensor) -> SignedDistance:
    """:class:`SignedDistance` of bool silhouettes ``mask [N, h, w]`` (cv2 distance transform with labels, CPU).

    Contour pixels are silhouette pixels with a 4-neighbour outside it (the crop border does not make a contour).
    """
    dev = mask.device
    m = mask.detach().cpu().numpy().astype(np.uint8)
    N, h, w = m.shape
    phi = np.full((N, h, w), -float(h + w), np.float32)
    nearest = np.zeros((N, h, w), np.int64)
    has = np.zeros(N, bool)
    for k in range(N):
        if not m[k].any():
            continue
        contour = m[k] & (1 - cv2.erode(m[k], _CROSS, borderType=cv2.BORDER_REPLICATE))
        if not contour.any():  # silhouette covers the whole crop
            phi[k] = float(h + w)
            continue
        has[k] = True
        dist, labels = cv2.distanceTransformWithLabels((1 - contour).astype(np.uint8), cv2.DIST_L2, 5,
                                                       labelType=cv2.DIST_LABEL_PIXEL)
        flat = np.flatnonzero(contour)
        lut = np.zeros(int(labels.max()) + 1, np.int64)
        lut[labels.reshape(-1)[flat]] = flat
        nearest[k] = lut[labels]
        phi[k] = np.where(m[k] > 0, dist + CONTOUR_PHI, CONTOUR_PHI - dist)
    phi_t = torch.from_numpy(phi).to(dev)
    p = F.pad(phi_t[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    gu = 0.5 * (p[:, 1:-1, 2:] - p[:, 1:-1, :-2])
    gv = 0.5 * (p[:, 2:, 1:-1] - p[:, :-2, 1:-1])
    return SignedDistance(phi=phi_t, nearest=torch.from_numpy(nearest).to(dev), grad_u=gu, grad_v=gv,
                          has_contour=torch.from_numpy(has).to(dev))


def _heaviside(phi: torch.Tensor, slope: float) -> tuple[torch.Tensor, torch.Tensor]:
    he = 0.5 + torch.atan(slope * phi) / math.pi
    delta = slope / (math.pi * (1 + (slope * phi) ** 2))
    return he, delta


def region_energy(Pf: torch.Tensor, phi: torch.Tensor, valid: torch.Tensor, slope: float) -> torch.Tensor:
    """``[N]`` mean of ``-log(He(phi) P_f + (1 - He(phi)) (1 - P_f))`` over the ``valid [N, h, w]`` pixels."""
    he, _ = _heaviside(phi, slope)
    den = (he * Pf + (1 - he) * (1 - Pf)).clamp_min(_EPS)
    v = valid.to(Pf.dtype)
    return (-torch.log(den) * v).sum(dim=(1, 2)) / v.sum(dim=(1, 2)).clamp_min(1.0)


@dataclass(frozen=True, eq=False)
class RegionTerms:
    """Region energy and its RBOT-style system: ``H [N, 6, 6]``, ``g [N, 6]``, ``cost [N]``."""

    H: torch.Tensor
    g: torch.Tensor
    cost: torch.Tensor


def region_terms(Pf: torch.Tensor, sd: SignedDistance, X_cam: torch.Tensor, K_crop: torch.Tensor,
                 valid: torch.Tensor, band_px: float, slope: float) -> RegionTerms:
    """Energy and normal equations of the region term.

    Args:
        Pf: ``[N, h, w]`` foreground posteriors. sd: the signed distance of the current render.
        X_cam: ``[N, h, w, 3]`` rendered surface points (camera frame, metres; read at contour pixels).
        K_crop: ``[N, 3, 3]``. valid: ``[N, h, w]`` bool pixels that count (in the image, not occluded).
        band_px: only pixels with ``|phi| <= band_px`` contribute to ``H, g``. slope: Heaviside slope ``s``.
    """
    N, h, w = Pf.shape
    cost = region_energy(Pf, sd.phi, valid, slope)
    n = valid.to(Pf.dtype).sum(dim=(1, 2)).clamp_min(1.0)
    he, delta = _heaviside(sd.phi, slope)
    den = (he * Pf + (1 - he) * (1 - Pf)).clamp_min(_EPS)
    coeff = (2 * Pf - 1) * delta / den
    sel = valid & (sd.phi.abs() <= band_px) & sd.has_contour[:, None, None]
    P = h * w
    Xc = torch.gather(X_cam.reshape(N, P, 3), 1, sd.nearest.reshape(N, P, 1).expand(N, P, 3))
    Jp = projection_jacobian_se3(K_crop.to(Xc.dtype), Xc)  # [N, P, 2, 6]
    c = torch.where(sel, coeff, torch.zeros_like(coeff)).reshape(N, P, 1)
    J = c * (sd.grad_u.reshape(N, P, 1) * Jp[:, :, 0] + sd.grad_v.reshape(N, P, 1) * Jp[:, :, 1])  # [N, P, 6]
    J = torch.where(torch.isfinite(J), J, torch.zeros_like(J))
    H = J.transpose(1, 2) @ J / n[:, None, None]
    g = J.sum(dim=1) / n[:, None]
    return RegionTerms(H=H, g=g, cost=cost)
