"""`DeepimModel`: DeepIM over a fixed set of objects: zoom, render, compare, update, iterate.

One iteration for N objects (all at once, any mix of images and objects):

1. the crop (:func:`~iterpose.refiners.deepim.zoom.zoom_boxes`) around the current estimate, covering its
   rendered box and the observed box (the box of the initial pose's projection, DeepIM's test-time observed mask;
   the same at training, so training and test see the same input);
2. render the object at the current pose into the crop (``K_crop``: :func:`iterpose.refiners.crops.crop_intrinsics`,
   no rendering outside the crop), sample the observed image into it (bilinear, zeros outside the image);
3. the network's ``(R_delta, v)`` and the disentangled update (:func:`apply_update`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from iterpose.refiners.crops import crop_intrinsics, sample_crops
from iterpose.refiners.deepim.config import DeepimConfig
from iterpose.refiners.deepim.network import DeepimNet
from iterpose.refiners.deepim.zoom import box_masks, projected_boxes, zoom_boxes
from iterpose.refiners.proxy_mesh import ProxyMesh, render_proxies

__all__ = ["DeepimModel", "DeepimStep", "ZoomedInputs", "apply_update", "update_target", "zoomed_inputs"]


def apply_update(T_co: torch.Tensor, R_delta: torch.Tensor, v: torch.Tensor, K: torch.Tensor,
                 crop_boxes: torch.Tensor) -> torch.Tensor:
    """DeepIM's pose update (differentiable in ``R_delta`` and ``v``).

    ``R_new = R_delta R``; the projected object centre moves by ``(vx w, vy h)`` image pixels (``w, h``: the crop's
    size in image pixels) and the depth becomes ``z exp(-vz)``; the new centre is on that pixel's ray.

    Args:
        T_co: ``[N, 4, 4]`` current poses. R_delta: ``[N, 3, 3]``. v: ``[N, 3]``. K: ``[N, 3, 3]`` full-image
            intrinsics. crop_boxes: ``[N, 4]`` ``(x0, y0, w, h)`` of the crops the update was predicted in.
    """
    T_co = T_co.to(v.dtype)
    K = K.to(v.dtype)
    boxes = crop_boxes.to(v.dtype)
    t = T_co[:, :3, 3]
    z = t[:, 2]
    fx, fy, skew = K[:, 0, 0], K[:, 1, 1], K[:, 0, 1]
    y_n = t[:, 1] / z + v[:, 1] * boxes[:, 3] / fy
    x_n = t[:, 0] / z + (v[:, 0] * boxes[:, 2] - skew * (y_n - t[:, 1] / z)) / fx
    z_new = z * torch.exp(-v[:, 2])
    out = torch.zeros_like(T_co)
    out[:, :3, :3] = R_delta.to(v.dtype) @ T_co[:, :3, :3]
    out[:, :3, 3] = torch.stack([x_n * z_new, y_n * z_new, z_new], dim=1)
    out[:, 3, 3] = 1.0
    return out


def update_target(T_src: torch.Tensor, T_tgt: torch.Tensor, K: torch.Tensor, crop_boxes: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(R_delta, v)`` that :func:`apply_update` turns ``T_src`` into ``T_tgt`` with (the network's target)."""
    K = K.to(T_src.dtype)
    boxes = crop_boxes.to(T_src.dtype)
    ts, tt = T_src[:, :3, 3], T_tgt[:, :3, 3]
    R_delta = T_tgt[:, :3, :3] @ T_src[:, :3, :3].transpose(1, 2)
    dy = tt[:, 1] / tt[:, 2] - ts[:, 1] / ts[:, 2]
    dx = tt[:, 0] / tt[:, 2] - ts[:, 0] / ts[:, 2]
    vy = dy * K[:, 1, 1] / boxes[:, 3]
    vx = (dx * K[:, 0, 0] + K[:, 0, 1] * dy) / boxes[:, 2]
    vz = torch.log(ts[:, 2] / tt[:, 2])
    return R_delta, torch.stack([vx, vy, vz], dim=1)


@dataclass(frozen=True, eq=False)
class ZoomedInputs:
    """The network's input for N objects (see :func:`zoomed_inputs`).

    Attributes:
        observed, rendered: ``[N, 3, S, S]`` RGB 0..1 (rendered: 0 off the object). rendered_mask, observed_mask:
            ``[N, S, S]`` bool. boxes: ``[N, 4]`` ``(x0, y0, w, h)`` of the crops in image pixels.
        K_crop: ``[N, 3, 3]`` the crops' intrinsics. X_cam: ``[N, S, S, 3]`` camera-frame surface point of the
            render at each crop pixel (metres, 0 off the object).
    """

    observed: torch.Tensor
    rendered: torch.Tensor
    rendered_mask: torch.Tensor
    observed_mask: torch.Tensor
    boxes: torch.Tensor
    K_crop: torch.Tensor
    X_cam: torch.Tensor


def zoomed_inputs(proxies: list[ProxyMesh], images: torch.Tensor, K: torch.Tensor, T_co: torch.Tensor,
                  image_index: torch.Tensor, observed_xyxy: torch.Tensor, size: int, margin: float,
                  timings: dict | None = None) -> ZoomedInputs:
    """Steps 1-2 of an iteration (module docstring): the zoom around ``T_co [N, 4, 4]``, the render of
    ``proxies[k]`` at it and the observed crop of ``images [B, 3, H, W]`` (``K [N, 3, 3]``, ``image_index [N]``,
    ``observed_xyxy [N, 4]``). With ``timings``, adds to its ``zoom_s`` and ``render_s``."""
    t0 = time.perf_counter()
    T = T_co.detach().float()
    rendered_xyxy = projected_boxes([p.vertices for p in proxies], T, K)
    boxes = zoom_boxes(K, T, rendered_xyxy, observed_xyxy, margin)
    K_crop = crop_intrinsics(K.float(), boxes, size)
    observed, _ = sample_crops(images, image_index, boxes, size)
    obs_mask = box_masks(observed_xyxy, boxes, size)
    t1 = time.perf_counter()
    rend = render_proxies(proxies, T, K_crop, size)
    if timings is not None:
        timings["zoom_s"] += t1 - t0
        timings["render_s"] += time.perf_counter() - t1
    return ZoomedInputs(observed=observed, rendered=rend.albedo.to(observed.dtype), rendered_mask=rend.mask,
                        observed_mask=obs_mask, boxes=boxes, K_crop=K_crop, X_cam=rend.X_cam)


@dataclass(frozen=True, eq=False)
class DeepimStep:
    """One iteration's result for N objects.

    Attributes:
        T_co: ``[N, 4, 4]`` updated poses. R_delta, v: the network's outputs (see :func:`apply_update`).
        crop_boxes: ``[N, 4]`` the crops used. rendered_mask: ``[N, S, S]`` bool silhouette at the input pose.
        inputs: what the network saw. aux: ``[N, 3, S/4, S/4]`` flow and mask maps (training only), or None.
    """

    T_co: torch.Tensor
    R_delta: torch.Tensor
    v: torch.Tensor
    crop_boxes: torch.Tensor
    rendered_mask: torch.Tensor
    inputs: ZoomedInputs | None = None
    aux: torch.Tensor | None = None


class DeepimModel(nn.Module):
    """DeepIM for ``meshes`` (``{obj_id: ProxyMesh}``, the render meshes, object frame, metres).

    ``timings`` accumulates wall-clock seconds of the pieces: ``zoom_s`` (boxes, crops), ``render_s``, ``net_s``.
    """

    def __init__(self, meshes: Mapping[int, ProxyMesh], config: DeepimConfig) -> None:
        super().__init__()
        self.config = config
        self.meshes = dict(sorted((int(k), v) for k, v in meshes.items()))
        self.net = DeepimNet(config)
        self.timings = {"zoom_s": 0.0, "render_s": 0.0, "net_s": 0.0}

    def reset_timings(self) -> None:
        self.timings = {"zoom_s": 0.0, "render_s": 0.0, "net_s": 0.0}

    def observed_boxes(self, obj_ids: list[int], T_init: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """``[N, 4]`` xyxy boxes of the objects projected at their initial poses (the observed mask)."""
        return projected_boxes([self.meshes[i].vertices for i in obj_ids], T_init, K)

    def iterate(self, images: torch.Tensor, K: torch.Tensor, obj_ids: list[int], T_co: torch.Tensor,
                image_index: torch.Tensor, observed_xyxy: torch.Tensor, aux: bool = False) -> DeepimStep:
        """One DeepIM iteration.

        Args:
            images: ``[B, 3, H, W]`` RGB 0..1. K: ``[N, 3, 3]`` each object's image intrinsics.
            obj_ids: N object ids. T_co: ``[N, 4, 4]`` current poses (not differentiated through).
            image_index: ``[N]`` image of each object. observed_xyxy: ``[N, 4]`` observed boxes.
            aux: also run the training-only flow and mask heads (``config.aux_heads``).
        """
        T = T_co.detach().float()
        inputs = zoomed_inputs([self.meshes[i] for i in obj_ids], images, K, T, image_index, observed_xyxy,
                               self.config.crop_size, self.config.zoom_margin, self.timings)
        t2 = time.perf_counter()
        out = self.net(inputs.observed, inputs.rendered, inputs.rendered_mask, inputs.observed_mask, aux=aux)
        R_delta, v = out[:2]
        T_new = apply_update(T, R_delta, v, K.float(), inputs.boxes)
        self.timings["net_s"] += time.perf_counter() - t2
        return DeepimStep(T_co=T_new, R_delta=R_delta, v=v, crop_boxes=inputs.boxes, rendered_mask=inputs.rendered_mask,
                          inputs=inputs, aux=out[2] if aux else None)

    def refine(self, images: torch.Tensor, K: torch.Tensor, obj_ids: list[int], T_init: torch.Tensor,
               image_index: torch.Tensor, iterations: int) -> list[torch.Tensor]:
        """``iterations`` iterations from ``T_init [N, 4, 4]`` (``K [N, 3, 3]`` per object); returns the poses
        after each, ``T_init`` first (``iterations + 1`` tensors)."""
        observed_xyxy = self.observed_boxes(obj_ids, T_init, K)
        poses = [T_init.float()]
        for _ in range(iterations):
            poses.append(self.iterate(images, K, obj_ids, poses[-1], image_index, observed_xyxy).T_co)
        return poses
