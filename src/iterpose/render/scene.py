"""Convenience renders on top of the primitives: single objects (what refiners need), multi-object scenes, depth.

All poses are ``T_co [N, 4, 4]`` object-to-camera, metres; ``K`` follows the OpenCV pixel-centre convention (see
:mod:`iterpose.render.raster`). RGB and depth are differentiable w.r.t. ``T_co`` (through
:func:`iterpose.render.interpolate`); masks, face ids and instance ids are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from iterpose.errors import InvalidInputError, ShapeError
from iterpose.mesh.model import vertex_normals  # re-exported (lives with the mesh)
from iterpose.render._checks import check_crop, check_K, check_size, check_T_co
from iterpose.render.interpolate import interpolate
from iterpose.render.raster import Raster, rasterize
from iterpose.render.shade import DEFAULT_AMBIENT, DEFAULT_DIFFUSE, DEFAULT_LIGHT_DIR_CAM, shade

if TYPE_CHECKING:  # only for annotations: the render layer reads ObjectModel's fields
    from iterpose.mesh.model import ObjectModel

__all__ = ["ObjectRender", "SceneRender", "render_objects", "render_scene", "render_depth", "DEFAULT_COLOR",
           "vertex_normals"]

DEFAULT_COLOR = (0.7, 0.7, 0.7)  # albedo of models without vertex colours, RGB 0..1


@dataclass(frozen=True)
class ObjectRender:
    """Each instance rendered alone in its own image or crop (:func:`render_objects`).

    Attributes:
        rgb: ``[N, 3, h, w]`` float RGB 0..1 (shaded, or the plain interpolated albedo if ``shading=False``), 0 on
            the background. Differentiable w.r.t. ``T_co``.
        depth_m: ``[N, h, w]`` float camera z in metres of the surface, 0 on the background; differentiable.
        mask: ``[N, h, w]`` bool silhouette.
        face_id: ``[N, h, w]`` int32 index into the instance's model faces, -1 on the background.
        normals_cam: ``[N, 3, h, w]`` float unit normals in the camera frame (interpolated vertex normals), 0 on
            the background.
    """

    rgb: torch.Tensor
    depth_m: torch.Tensor
    mask: torch.Tensor
    face_id: torch.Tensor
    normals_cam: torch.Tensor


@dataclass(frozen=True)
class SceneRender:
    """Several instances per image in one z-buffer (:func:`render_scene`).

    Attributes:
        rgb: ``[B, 3, H, W]`` float RGB 0..1, 0 on the background.
        depth_m: ``[B, H, W]`` float camera z in metres of the nearest surface, 0 on the background.
        instance_id: ``[B, H, W]`` int64 index into the N instances of the visible one, -1 on the background.
        mask_full: ``[N, H, W]`` bool, each instance's silhouette as if alone (in its own image's frame).
        mask_visible: ``[N, H, W]`` bool, the pixels where the instance is the visible one.
    """

    rgb: torch.Tensor
    depth_m: torch.Tensor
    instance_id: torch.Tensor
    mask_full: torch.Tensor
    mask_visible: torch.Tensor


def _check_models(models: Sequence["ObjectModel"], n: int, fn: str) -> None:
    if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
        raise InvalidInputError(f"{fn}: models must be a sequence of ObjectModel (one per instance), "
                                f"got {type(models).__name__}.")
    if len(models) != n:
        raise ShapeError(f"{fn}: models has {len(models)} entries but T_co has N={n} instances; pass one model "
                         f"per instance.")


def _vertices_to_camera(model: "ObjectModel", T_co: torch.Tensor) -> torch.Tensor:
    """Vertices ``[n, V, 3]`` of ``model`` in the camera frames of ``T_co [n, 4, 4]`` (metres)."""
    dtype = torch.promote_types(T_co.dtype, model.vertices.dtype)
    v = model.vertices.to(T_co.device, dtype)
    return v @ T_co[:, :3, :3].to(dtype).transpose(1, 2) + T_co[:, :3, 3].to(dtype)[:, None]


def _to_camera(model: "ObjectModel", T_co: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices ``[n, V, 3]`` and vertex normals ``[n, V, 3]`` of ``model`` in the camera frames of ``T_co``
    (normals computed from the faces when the model has none)."""
    dtype = torch.promote_types(T_co.dtype, model.vertices.dtype)
    n = model.vertex_normals
    if n is None:
        n = vertex_normals(model.vertices.to(T_co.device, dtype), model.faces.to(T_co.device))
    return _vertices_to_camera(model, T_co), n.to(T_co.device, dtype) @ T_co[:, :3, :3].to(dtype).transpose(1, 2)


def _albedo(model: "ObjectModel", device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if model.vertex_colors is not None:
        return model.vertex_colors.to(device, dtype)
    return torch.tensor(DEFAULT_COLOR, device=device, dtype=dtype).expand(model.num_vertices, 3)


def _groups(models: Sequence["ObjectModel"]) -> list[list[int]]:
    """Instance indices grouped by model object (same model -> one batched rasterisation), in first-seen order."""
    groups: dict[int, list[int]] = {}
    for k, m in enumerate(models):
        groups.setdefault(id(m), []).append(k)
    return list(groups.values())


def _instance_rasters(models, T_co, K, height, width, crop, near_m, backend, normals=True):
    """Rasterise each instance alone, one batched call per distinct model. Yields, per group, ``(indices,
    vertices_cam [n, V, 3], normals_cam [n, V, 3] | None, faces, Raster)``."""
    for idx in _groups(models):
        m = models[idx[0]]
        sel = torch.tensor(idx, device=T_co.device)
        if normals:
            vc, nc = _to_camera(m, T_co[sel])
        else:
            vc, nc = _vertices_to_camera(m, T_co[sel]), None
        faces = m.faces.to(T_co.device)
        r = rasterize(vc, faces, K[sel.to(K.device)], height, width, crop=None if crop is None else crop[idx],
                      near_m=near_m, backend=backend)
        yield idx, vc, nc, faces, r


def render_objects(models: Sequence["ObjectModel"], T_co: torch.Tensor, K: torch.Tensor, height: int, width: int,
                   crop: torch.Tensor | None = None, *, shading: bool = True,
                   light_dir_cam: Sequence[float] = DEFAULT_LIGHT_DIR_CAM, ambient: float = DEFAULT_AMBIENT,
                   diffuse: float = DEFAULT_DIFFUSE, near_m: float = 0.01, backend: str = "auto") -> ObjectRender:
    """Render each instance alone, batched (instances of the same model share one rasterisation call).

    Args:
        models: N ObjectModel, one per instance (the same object may repeat).
        T_co: ``[N, 4, 4]`` object-to-camera poses, metres.
        K: ``[N, 3, 3]`` (or ``[3, 3]``) full-image intrinsics, pixels.
        height, width: full image size.
        crop: optional ``[N, 4]`` int (x0, y0, w, h) windows sharing w, h (see :func:`rasterize`).
        shading: apply :func:`shade` (Lambert + ambient) with ``light_dir_cam``, ``ambient``, ``diffuse``;
            otherwise ``rgb`` is the interpolated albedo.
        near_m, backend: passed to :func:`rasterize`.

    Returns:
        :class:`ObjectRender` with ``[N, ...]`` tensors of the crop size (or full size), on ``T_co``'s device.
    """
    fn = "render_objects"
    T_co = check_T_co(T_co, fn)
    N = T_co.shape[0]
    _check_models(models, N, fn)
    height, width = check_size(height, width, fn)
    K = check_K(K, N, fn)
    crop_off, h, w = check_crop(crop, N, height, width, fn)
    crop_t = None if crop is None else torch.cat([crop_off, torch.tensor([[w, h]]).expand(N, 2)], 1)
    if N == 0:
        dtype = torch.promote_types(T_co.dtype, torch.float32)
        z = torch.zeros(0, 3, h, w, dtype=dtype, device=T_co.device)
        return ObjectRender(rgb=z, depth_m=z[:, 0], mask=z[:, 0].bool(), face_id=z[:, 0].int(), normals_cam=z)
    parts, order = [], []
    for idx, vc, nc, faces, r in _instance_rasters(models, T_co, K, height, width, crop_t, near_m, backend):
        m = models[idx[0]]
        albedo = _albedo(m, T_co.device, vc.dtype).expand(len(idx), -1, -1)
        out = interpolate(torch.cat([albedo, nc, vc[..., 2:]], dim=-1), r, vc, faces)
        parts.append((out, r.face_id))
        order.extend(idx)
    if len(parts) == 1:
        attrs, face_id = parts[0]
    else:
        attrs = torch.cat([p[0] for p in parts])
        face_id = torch.cat([p[1].to(T_co.device) for p in parts])
    if order != list(range(N)):
        inv = torch.empty(N, dtype=torch.long)
        inv[torch.tensor(order)] = torch.arange(N)
        inv = inv.to(T_co.device)
        attrs, face_id = attrs[inv], face_id[inv]
    mask = face_id >= 0
    normals = attrs[:, 3:6]
    normals = normals / normals.norm(dim=1, keepdim=True).clamp_min(1e-12)
    color = attrs[:, :3]
    rgb = shade(color, normals, mask, light_dir_cam=light_dir_cam, ambient=ambient, diffuse=diffuse) if shading \
        else color
    return ObjectRender(rgb=rgb, depth_m=attrs[:, 6], mask=mask, face_id=face_id, normals_cam=normals)


def render_scene(models: Sequence["ObjectModel"], T_co: torch.Tensor, K: torch.Tensor, image_index: torch.Tensor,
                 height: int, width: int, *, shading: bool = True,
                 light_dir_cam: Sequence[float] = DEFAULT_LIGHT_DIR_CAM, ambient: float = DEFAULT_AMBIENT,
                 diffuse: float = DEFAULT_DIFFUSE, near_m: float = 0.01, backend: str = "auto") -> SceneRender:
    """Render several instances per image into one z-buffer, plus each instance's full and visible masks.

    Args:
        models: N ObjectModel, one per instance.
        T_co: ``[N, 4, 4]`` object-to-camera poses, metres.
        K: ``[B, 3, 3]`` full-image intrinsics of the B images, pixels.
        image_index: ``[N]`` int64, the image (0..B-1) each instance belongs to.
        height, width: image size.
        shading, light_dir_cam, ambient, diffuse, near_m, backend: as in :func:`render_objects`.

    Returns:
        :class:`SceneRender` on ``T_co``'s device.
    """
    fn = "render_scene"
    T_co = check_T_co(T_co, fn)
    N = T_co.shape[0]
    _check_models(models, N, fn)
    height, width = check_size(height, width, fn)
    K = check_K(K, None, fn)
    B = K.shape[0]
    image_index = torch.as_tensor(image_index)
    if image_index.shape != (N,) or image_index.dtype.is_floating_point:
        raise ShapeError(f"{fn}: image_index must be [N] = [{N}] integers, got {list(image_index.shape)} "
                         f"{image_index.dtype}.")
    if N and (int(image_index.min()) < 0 or int(image_index.max()) >= B):
        raise InvalidInputError(f"{fn}: image_index values must be in [0, {B}) for K with B={B} images, got "
                                f"range [{int(image_index.min())}, {int(image_index.max())}].")
    dev = T_co.device
    img = image_index.to("cpu", torch.int64)
    Ki = K[img.to(K.device)]
    full = torch.zeros(N, height, width, dtype=torch.bool, device=dev)
    for idx, _, _, _, r in _instance_rasters(models, T_co, Ki, height, width, None, near_m, backend, normals=False):
        full[torch.tensor(idx, device=dev)] = r.face_id.to(dev) >= 0
    dtype = torch.promote_types(T_co.dtype, torch.float32)
    rgb_l, depth_l, inst_l = [], [], []
    for b in range(B):
        members = (img == b).nonzero().flatten().tolist()
        if not members:
            rgb_l.append(torch.zeros(3, height, width, dtype=dtype, device=dev))
            depth_l.append(torch.zeros(height, width, dtype=dtype, device=dev))
            inst_l.append(torch.full((height, width), -1, dtype=torch.int64, device=dev))
            continue
        verts, faces, attrs, starts, nf = [], [], [], [], 0
        nv = 0
        for n in members:
            m = models[n]
            vc, nc = _to_camera(m, T_co[n:n + 1])
            verts.append(vc[0])
            faces.append(m.faces.to(dev) + nv)
            attrs.append(torch.cat([_albedo(m, dev, vc.dtype), nc[0], vc[0, :, 2:]], dim=-1))
            starts.append(nf)
            nv += m.num_vertices
            nf += m.num_faces
        vcat, fcat, acat = torch.cat(verts), torch.cat(faces), torch.cat(attrs)
        r = rasterize(vcat, fcat, K[b], height, width, near_m=near_m, backend=backend)
        out = interpolate(acat, r, vcat, fcat)[0]
        fid = r.face_id[0].to(dev).long()
        starts_t = torch.tensor(starts, device=dev)
        local = torch.searchsorted(starts_t, fid.clamp_min(0), right=True) - 1
        inst = torch.where(fid >= 0, torch.tensor(members, device=dev)[local], -1)
        mask = fid >= 0
        normals = out[3:6] / out[3:6].norm(dim=0, keepdim=True).clamp_min(1e-12)
        color = out[None, :3]
        rgb = shade(color, normals[None], mask[None], light_dir_cam=light_dir_cam, ambient=ambient,
                    diffuse=diffuse)[0] if shading else color[0]
        rgb_l.append(rgb)
        depth_l.append(out[6])
        inst_l.append(inst)
    instance_id = torch.stack(inst_l)
    mask_visible = instance_id[img.to(dev)] == torch.arange(N, device=dev)[:, None, None]
    return SceneRender(rgb=torch.stack(rgb_l), depth_m=torch.stack(depth_l), instance_id=instance_id,
                       mask_full=full, mask_visible=mask_visible)


def render_depth(model: "ObjectModel", T_co: torch.Tensor, K: torch.Tensor, height: int, width: int, *,
                 near_m: float = 0.01, backend: str = "auto") -> torch.Tensor:
    """Depth of one object at one or several poses (e.g. for the VSD metric). Not differentiable.

    Args:
        model: the ObjectModel.
        T_co: ``[4, 4]`` or ``[N, 4, 4]`` object-to-camera poses, metres.
        K: ``[3, 3]`` or ``[N, 3, 3]`` full-image intrinsics, pixels.
        height, width: image size.

    Returns:
        ``[H, W]`` (for a ``[4, 4]`` pose) or ``[N, H, W]`` float32 camera z in metres, 0 where the object is not.
    """
    fn = "render_depth"
    single = isinstance(T_co, torch.Tensor) and T_co.dim() == 2
    T_co = check_T_co(T_co, fn)
    height, width = check_size(height, width, fn)
    K = check_K(K, T_co.shape[0], fn)
    vc = _vertices_to_camera(model, T_co.detach())
    r: Raster = rasterize(vc, model.faces.to(T_co.device), K, height, width, near_m=near_m, backend=backend)
    return r.depth_m[0] if single else r.depth_m
