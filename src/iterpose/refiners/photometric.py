"""Photometric least squares shared by the render-and-compare refiners: image gradients of the observed crop
times the projection Jacobian of the rendered surface point, robust (IRLS) weights, gain/bias per channel.

Residual at a rendered pixel ``p`` with surface point ``X_p`` (camera frame) and rendered colour ``f_p``:
``r_p = a_c f_p + b_c - I_obs(pi(X_p))`` (channel ``c``). For the left twist ``xi`` of ``T_co`` the surface point
moves, so ``d r_p / d xi = -grad I_obs(u_p) . J_proj(K_crop, X_p)`` with
:func:`iterpose.geometry.projection_jacobian_se3` (``[2, 6]``, translation first). The cost is
``mean_p sum_c rho(r / sigma)`` and the Gauss-Newton system ``H = mean sum_c w J^T J / sigma^2``,
``g = mean sum_c w r J / sigma^2`` with IRLS weights ``w = rho'(x) / x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from iterpose.errors import InvalidInputError
from iterpose.geometry import projection_jacobian_se3

__all__ = ["RobustLoss", "image_gradients", "robust_rho_and_weight", "fit_gain_bias", "PhotometricTerms",
           "photometric_terms", "erode"]

RobustLoss = Literal["l2", "huber", "cauchy", "tukey"]


def _gauss_kernel(sigma: float, dtype, device) -> torch.Tensor:
    r = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-r, r + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def image_gradients(img: torch.Tensor, blur_sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Blur then Sobel.

    Args:
        img: ``[N, C, h, w]`` float. blur_sigma: Gaussian sigma in pixels (0 = no blur).

    Returns:
        ``(blurred, d/du, d/dv)`` each ``[N, C, h, w]``; derivatives per pixel (Sobel / 8), replicate borders.
    """
    N, C, h, w = img.shape
    x = img.reshape(N * C, 1, h, w)
    if blur_sigma > 0:
        k = _gauss_kernel(blur_sigma, img.dtype, img.device)
        r = k.numel() // 2
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
        x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    sob = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=img.dtype, device=img.device) / 8
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gu = F.conv2d(xp, sob.view(1, 1, 3, 3))
    gv = F.conv2d(xp, sob.t().contiguous().view(1, 1, 3, 3))
    return x.view(N, C, h, w), gu.view(N, C, h, w), gv.view(N, C, h, w)


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``[N, h, w]`` bool mask eroded by a ``(2 radius + 1)^2`` square (pixels outside the crop count as set)."""
    if radius <= 0:
        return mask
    m = (~mask).to(torch.float32)[:, None]
    grown = F.max_pool2d(m, 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0
    return mask & ~grown


def robust_rho_and_weight(x: torch.Tensor, loss: RobustLoss) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rho(x), w(x) = rho'(x)/x)`` elementwise for a normalised residual ``x`` (``rho ~ x^2/2`` near 0)."""
    a = x.abs()
    if loss == "l2":
        return 0.5 * x * x, torch.ones_like(x)
    if loss == "huber":
        rho = torch.where(a <= 1, 0.5 * x * x, a - 0.5)
        return rho, torch.where(a <= 1, torch.ones_like(x), 1 / a.clamp_min(1e-12))
    if loss == "cauchy":
        return 0.5 * torch.log1p(x * x), 1 / (1 + x * x)
    if loss == "tukey":
        c = 4.685
        inside = a < c
        q = (1 - (x / c) ** 2)
        rho = torch.where(inside, c * c / 6 * (1 - q ** 3), torch.full_like(x, c * c / 6))
        return rho, torch.where(inside, q * q, torch.zeros_like(x))
    raise InvalidInputError(f"robust_rho_and_weight: loss={loss!r} is not one of 'l2', 'huber', 'cauchy', 'tukey'.")


def fit_gain_bias(albedo: torch.Tensor, observed: torch.Tensor, weight: torch.Tensor, ridge: float = 1e-3
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per object and channel ``(a, b)`` minimising ``sum w (a f + b - I)^2 + ridge n (a - 1)^2``.

    Args:
        albedo, observed: ``[N, C, h, w]``. weight: ``[N, h, w]`` (0 = pixel unused).

    Returns:
        ``(a [N, C], b [N, C])``; ``a = 1, b = 0`` for objects without pixels.
    """
    w = weight[:, None]
    n = w.sum(dim=(2, 3)).clamp_min(1e-9)
    mf = (w * albedo).sum(dim=(2, 3)) / n
    mi = (w * observed).sum(dim=(2, 3)) / n
    df = albedo - mf[..., None, None]
    di = observed - mi[..., None, None]
    var = (w * df * df).sum(dim=(2, 3)) / n
    cov = (w * df * di).sum(dim=(2, 3)) / n
    a = (cov + ridge) / (var + ridge)
    b = mi - a * mf
    empty = weight.sum(dim=(1, 2)) <= 0
    a = torch.where(empty[:, None], torch.ones_like(a), a)
    b = torch.where(empty[:, None], torch.zeros_like(b), b)
    return a, b


@dataclass(frozen=True, eq=False)
class PhotometricTerms:
    """Normal equations of the photometric term for N objects.

    Attributes:
        H: ``[N, 6, 6]``. g: ``[N, 6]``. cost: ``[N]`` mean robust cost per used pixel. count: ``[N]`` used pixels.
        gain, bias: ``[N, C]`` the fitted ``a``, ``b``.
    """

    H: torch.Tensor
    g: torch.Tensor
    cost: torch.Tensor
    count: torch.Tensor
    gain: torch.Tensor
    bias: torch.Tensor


def photometric_terms(albedo: torch.Tensor, observed: torch.Tensor, grad_u: torch.Tensor, grad_v: torch.Tensor,
                      X_cam: torch.Tensor, K_crop: torch.Tensor, weight: torch.Tensor, sigma: float,
                      loss: RobustLoss, gain_bias: bool = True, with_system: bool = True) -> PhotometricTerms:
    """Photometric cost and Gauss-Newton system.

    Args:
        albedo: ``[N, C, h, w]`` rendered colour ``f``. observed: ``[N, C, h, w]`` observed crop ``I_obs``.
        grad_u, grad_v: ``[N, C, h, w]`` derivatives of ``I_obs`` per pixel (columns, rows).
        X_cam: ``[N, h, w, 3]`` rendered surface points, camera frame (metres). K_crop: ``[N, 3, 3]``.
        weight: ``[N, h, w]`` float 0..1, the pixels to use (rendered, not occluded, away from the silhouette).
        sigma: residual scale (intensity units). loss: robust loss.
        gain_bias: fit ``a, b`` per channel (else ``a = 1, b = 0``). with_system: also build ``H, g``.

    Returns:
        :class:`PhotometricTerms` (``H``, ``g`` zero when ``with_system`` is False).
    """
    N, C, h, w = albedo.shape
    if gain_bias:
        a, b = fit_gain_bias(albedo, observed, weight)
    else:
        a = torch.ones(N, C, dtype=albedo.dtype, device=albedo.device)
        b = torch.zeros_like(a)
    r = a[..., None, None] * albedo + b[..., None, None] - observed  # [N, C, h, w]
    x = r / sigma
    rho, wr = robust_rho_and_weight(x, loss)
    count = weight.sum(dim=(1, 2))
    n = count.clamp_min(1.0)
    cost = (weight[:, None] * rho).sum(dim=(1, 2, 3)) / n
    H = torch.zeros(N, 6, 6, dtype=albedo.dtype, device=albedo.device)
    g = torch.zeros(N, 6, dtype=albedo.dtype, device=albedo.device)
    if with_system:
        P = h * w
        Jp = projection_jacobian_se3(K_crop.to(X_cam.dtype), X_cam.reshape(N, P, 3))  # [N, P, 2, 6]
        Jp = torch.where((weight.reshape(N, P) > 0)[..., None, None], Jp, torch.zeros_like(Jp))
        J = -(grad_u.reshape(N, C, P, 1) * Jp[:, None, :, 0] + grad_v.reshape(N, C, P, 1) * Jp[:, None, :, 1])
        wp = (wr * weight[:, None]).reshape(N, C, P, 1) / (sigma * sigma)  # [N, C, P, 1]
        Jw = (J * wp).reshape(N, C * P, 6)
        H = Jw.transpose(1, 2) @ J.reshape(N, C * P, 6) / n[:, None, None]
        g = (Jw * r.reshape(N, C * P, 1)).sum(dim=1) / n[:, None]
    return PhotometricTerms(H=H, g=g, cost=cost, count=count, gain=a, bias=b)
