"""`SynthPoseDataset`: an on-the-fly torch Dataset of synthetic training crops (DeepIM style).

Item ``k`` renders scene ``k`` (:func:`iterpose.data.synth.generate_prepared` with ``scene_rng(seed, k)``), picks
one of its targets, perturbs its pose (:func:`iterpose.data.perturb.perturb_poses`, ``config.perturb``) and cuts a
zoomed crop of the observed image centred on the projection of the object centre under the *initial* pose, sized
from the projected bounding sphere x ``crop_margin`` and resized to ``crop_hw``; ``K_crop`` is the matching
:func:`iterpose.geometry.zoom_K`. Everything depends on ``(seed, k)`` only, so items are identical whatever the
DataLoader worker or the order.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from iterpose.data.perturb import perturb_poses
from iterpose.data.synth import SynthConfig, generate_prepared, prepare_objects, scene_rng
from iterpose.errors import InvalidInputError
from iterpose.geometry import zoom_K
from iterpose.mesh.model import ObjectModel

__all__ = ["SynthPoseDataset", "crop_box_xywh", "warp_crop"]


def crop_box_xywh(center_px: tuple[float, float], radius_px: float, crop_hw: tuple[int, int], margin: float
                  ) -> np.ndarray:
    """The crop box around a projected object, with the aspect ratio of ``crop_hw``.

    Args:
        center_px: ``(u, v)`` projected object centre, full-image pixels (OpenCV convention).
        radius_px: projected bounding-sphere radius, pixels (``f * r / z``).
        crop_hw: ``(h, w)`` output size; the box has the same aspect ratio.
        margin: the box's shorter half-side is ``radius_px * margin``.

    Returns:
        ``[4]`` float64 ``(x0, y0, w, h)`` in the convention of :func:`iterpose.geometry.crop_K` (the box covers
        ``u in [x0 - 0.5, x0 + w - 0.5]``), centred on ``center_px``.
    """
    h_out, w_out = crop_hw
    half = max(float(radius_px) * float(margin), 1.0)
    if w_out >= h_out:
        bh, bw = 2 * half, 2 * half * w_out / h_out
    else:
        bw, bh = 2 * half, 2 * half * h_out / w_out
    u, v = center_px
    return np.array([u - bw / 2 + 0.5, v - bh / 2 + 0.5, bw, bh], np.float64)


def warp_crop(image: np.ndarray, box_xywh: np.ndarray, crop_hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Cut ``box_xywh`` out of ``image`` and resize it to ``crop_hw`` exactly as :func:`iterpose.geometry.zoom_K`
    describes (``u' = sx (u - x0 + 0.5) - 0.5``); zeros outside the image.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` numpy (float32, uint8 or bool -> uint8 internally).
        box_xywh: ``[4]`` crop box, full-image pixels. crop_hw: ``(h, w)`` output size.
        nearest: nearest-neighbour (masks, depth) instead of bilinear.

    Returns:
        ``[h, w(, C)]`` array of ``image``'s dtype.
    """
    h_out, w_out = crop_hw
    x0, y0, bw, bh = (float(v) for v in box_xywh)
    sx, sy = w_out / bw, h_out / bh
    M = np.array([[sx, 0.0, sx * (0.5 - x0) - 0.5], [0.0, sy, sy * (0.5 - y0) - 0.5]])
    src = image.astype(np.uint8) if image.dtype == bool else image
    out = cv2.warpAffine(src, M, (w_out, h_out), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.astype(bool) if image.dtype == bool else out


class SynthPoseDataset(Dataset):
    """Synthetic pose-refinement samples, generated on the fly.

    Args:
        objects: the target models (a sequence, or the ``{obj_id: ObjectModel}`` dict of ``load_objects``).
        config: the :class:`~iterpose.data.synth.SynthConfig` (scene, augmentation, ``perturb``, ``crop_hw``,
            ``crop_margin``).
        length: number of items (= scenes).
        seed: item ``k`` uses ``scene_rng(seed, k)``.

    Each item is a dict:

    - ``"rgb"``: ``[3, h, w]`` float32 RGB 0..1, the observed crop (``(h, w) = config.crop_hw``);
    - ``"mask_visible"``, ``"mask_full"``: ``[h, w]`` bool, the target's visible / full silhouette in the crop;
    - ``"depth_m"``: ``[h, w]`` float32 scene depth in the crop, metres, 0 = background;
    - ``"K_crop"``: ``[3, 3]`` float32 intrinsics of the crop; ``"K"``: ``[3, 3]`` of the full image;
    - ``"box_xywh"``: ``[4]`` float32 crop box in full-image pixels (:func:`crop_box_xywh`);
    - ``"T_co_gt"``, ``"T_co_init"``: ``[4, 4]`` float32 ground-truth and perturbed initial poses, metres;
    - ``"obj_id"``, ``"obj_index"``: int64 scalars, the object id and its index in ``objects``;
    - ``"visib_fract"``: float32 scalar, the target's visible fraction in the full image;
    - ``"index"``: int64 scalar, ``k``.

    Picklable (the prepared meshes are rebuilt lazily in each worker); the default ``collate_fn`` batches items.

    DataLoader workers: with the default ``fork`` start method, create the loader before the main process renders
    anything. The numba rasteriser's thread pool (GNU OpenMP, numba's default threading layer here) makes a forked
    child abort ("fork() called from a process already using GNU OpenMP") once the parent has used it; then pass
    ``multiprocessing_context="forkserver"`` (or ``"spawn"``), or set ``NUMBA_THREADING_LAYER=workqueue``.
    """

    def __init__(self, objects: Sequence[ObjectModel] | dict, config: SynthConfig = SynthConfig(), length: int = 10000,
                 seed: int = 0) -> None:
        if isinstance(objects, dict):
            objects = list(objects.values())
        prepare_objects(objects)  # validate now, not in a worker
        if not isinstance(config, SynthConfig):
            raise InvalidInputError(f"SynthPoseDataset: config must be a SynthConfig, got {type(config).__name__}")
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise InvalidInputError(f"SynthPoseDataset: length must be an int >= 0, got {length!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise InvalidInputError(f"SynthPoseDataset: seed must be an int, got {seed!r}")
        self.objects = tuple(objects)
        self.config = config
        self.length = length
        self.seed = seed
        self._meshes = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_meshes"] = None
        return state

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.length <= index < self.length:
            raise IndexError(f"SynthPoseDataset: index {index} out of range for length {self.length}")
        index = index % self.length if self.length else index
        if self._meshes is None:
            self._meshes = prepare_objects(self.objects)
        cfg = self.config
        rng = scene_rng(self.seed, index)
        scene = generate_prepared(self._meshes, cfg, rng)
        n = int(rng.integers(scene.num_instances))
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        T_gt = scene.T_co[n]
        T_init = perturb_poses(T_gt[None], cfg.perturb, gen)[0]
        mesh = self._meshes[int(scene.obj_index[n])]
        K = cfg.K_matrix
        c = T_init.double().numpy()
        centre = c[:3, :3] @ mesh.center + c[:3, 3]
        z = max(float(centre[2]), 1e-3)
        uv = (K @ (centre / z))[:2]
        radius_px = max(K[0, 0], K[1, 1]) * mesh.radius / z
        box = crop_box_xywh((float(uv[0]), float(uv[1])), radius_px, cfg.crop_hw, cfg.crop_margin)
        rgb = warp_crop(scene.rgb.permute(1, 2, 0).numpy(), box, cfg.crop_hw)
        K_crop = zoom_K(torch.from_numpy(K), torch.from_numpy(box), tuple(cfg.crop_hw)).float()
        return {
            "rgb": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
            "mask_visible": torch.from_numpy(warp_crop(scene.mask_visible[n].numpy(), box, cfg.crop_hw, True)),
            "mask_full": torch.from_numpy(warp_crop(scene.mask_full[n].numpy(), box, cfg.crop_hw, True)),
            "depth_m": torch.from_numpy(warp_crop(scene.depth_m.numpy(), box, cfg.crop_hw, True)),
            "K_crop": K_crop,
            "K": scene.K.clone(),
            "box_xywh": torch.from_numpy(box.astype(np.float32)),
            "T_co_gt": T_gt.clone(),
            "T_co_init": T_init,
            "obj_id": scene.obj_ids[n].clone(),
            "obj_index": scene.obj_index[n].clone(),
            "visib_fract": torch.tensor(float(scene.visib_fract[n]), dtype=torch.float32),
            "index": torch.tensor(index, dtype=torch.int64),
        }
