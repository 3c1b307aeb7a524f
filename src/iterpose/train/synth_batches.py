"""On-the-fly synthetic training batches: scenes of the training objects, ground truth, perturbed initial poses.

Batch ``step`` of rank ``rank`` is a pure function of ``(seed, step, rank)``: image ``k`` of it is
``generate_scene(..., scene_rng(seed, (step * world_size + rank) * batch_size + k))`` and the initial poses and the
augmentation draw from ``torch.Generator().manual_seed(hash of (seed, step, rank))``. That is what makes a resumed
run reach the same weights as an uninterrupted one, and DDP ranks see different images.

Initial poses: the ground truth perturbed as DeepIM (``R' = R_delta R``, camera-frame translation noise, see
:mod:`iterpose.data.perturb`), at a noise level drawn per object from :class:`InitNoise`'s list of scales (a mix
of small and DeepIM-sized errors: small scales teach the final precision, large ones the basin; the RePOSE
author notes that results depend heavily on this distribution).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from iterpose.data.augment import AugmentConfig, augment_images
from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.data.synth import SynthConfig, generate_prepared, prepare_objects, scene_rng
from iterpose.errors import InvalidInputError

__all__ = ["InitNoise", "SynthBatch", "SynthBatchSource", "batch_generator"]


@dataclass(frozen=True)
class InitNoise:
    """Initial-pose noise: per object, one of the ``levels`` (uniformly) is used.

    Attributes:
        levels: ``(rot_std_deg, trans_std_x_m, trans_std_y_m, trans_std_z_m)`` per level; each Euler angle of the
            rotation noise has std ``rot_std_deg`` (DeepIM: 15°, 1/1/5 cm).
        max_rot_deg: draws rotating more than this are redrawn.
    """

    levels: tuple[tuple[float, float, float, float], ...] = (
        (15.0, 0.01, 0.01, 0.05), (10.0, 0.01, 0.01, 0.04), (5.0, 0.005, 0.005, 0.03), (2.5, 0.003, 0.003, 0.02))
    max_rot_deg: float = 45.0

    def __post_init__(self) -> None:
        ok = isinstance(self.levels, (tuple, list)) and len(self.levels) > 0 and all(
            isinstance(lv, (tuple, list)) and len(lv) == 4 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in lv) for lv in self.levels)
        if not ok:
            raise InvalidInputError(f"InitNoise.levels: expected a list of [rot_std_deg, tx_m, ty_m, tz_m] with "
                                    f"values >= 0, got {self.levels!r}.")
        if isinstance(self.max_rot_deg, bool) or not isinstance(self.max_rot_deg, (int, float)) or \
                not self.max_rot_deg > 0:
            raise InvalidInputError(f"InitNoise.max_rot_deg: expected a number > 0, got {self.max_rot_deg!r}.")


@dataclass(frozen=True, eq=False)
class SynthBatch:
    """B synthetic images holding N target objects.

    Attributes:
        images: ``[B, 3, H, W]`` float32 RGB 0..1 (augmented). K: ``[B, 3, 3]`` float32 pixels.
        object_ids: list of N ints. object_index: ``[N]`` int64 index into the source's object list.
        image_index: ``[N]`` int64 image of each object.
        T_gt: ``[N, 4, 4]`` float32 ground-truth ``T_co`` (metres). T_init: ``[N, 4, 4]`` perturbed.
        mask_visible: ``[N, H, W]`` bool visible pixels of each target.
    """

    images: torch.Tensor
    K: torch.Tensor
    object_ids: list
    object_index: torch.Tensor
    image_index: torch.Tensor
    T_gt: torch.Tensor
    T_init: torch.Tensor
    mask_visible: torch.Tensor

    def to(self, device) -> "SynthBatch":
        return SynthBatch(images=self.images.to(device), K=self.K.to(device), object_ids=self.object_ids,
                          object_index=self.object_index, image_index=self.image_index, T_gt=self.T_gt.to(device),
                          T_init=self.T_init.to(device), mask_visible=self.mask_visible.to(device))


def batch_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The CPU generator of batch ``step`` of rank ``rank`` (independent streams per (seed, step, rank))."""
    mixed = np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(mixed) & ((1 << 63) - 1))


class SynthBatchSource:
    """Makes :class:`SynthBatch` es of ``objects``.

    Args:
        objects: the training :class:`~iterpose.mesh.ObjectModel` s.
        synth: scene settings (image size, K, distances, clutter).
        noise: initial-pose noise. augment: photometric augmentation (``None``: none).
        batch_size: images per batch (per rank). seed: the run's seed. world_size: number of DDP ranks.
    """

    def __init__(self, objects: Sequence, synth: SynthConfig, noise: InitNoise, augment: AugmentConfig | None,
                 batch_size: int, seed: int, world_size: int = 1) -> None:
        self.objects = list(objects)
        self.meshes = prepare_objects(self.objects)
        self.synth, self.noise, self.augment = synth, noise, augment
        self.batch_size, self.seed, self.world_size = batch_size, seed, world_size

    def batch(self, step: int, rank: int = 0) -> SynthBatch:
        gen = batch_generator(self.seed, step, rank)
        first = (step * self.world_size + rank) * self.batch_size
        scenes = [generate_prepared(self.meshes, self.synth, scene_rng(self.seed, first + k))
                  for k in range(self.batch_size)]
        images = torch.stack([s.rgb.contiguous() for s in scenes])
        if self.augment is not None:
            images = augment_images(images, self.augment, gen)
        T_gt = torch.cat([s.T_co for s in scenes])
        levels = torch.randint(len(self.noise.levels), (T_gt.shape[0],), generator=gen)
        T_init = T_gt.clone()
        for lv in range(len(self.noise.levels)):
            sel = (levels == lv).nonzero().flatten()
            if len(sel):
                rot, tx, ty, tz = self.noise.levels[lv]
                cfg = PerturbConfig(rot_std_deg=rot, trans_std_m=(tx, ty, tz), max_rot_deg=self.noise.max_rot_deg)
                T_init[sel] = perturb_poses(T_gt[sel], cfg, gen)
        return SynthBatch(
            images=images, K=torch.stack([s.K for s in scenes]),
            object_ids=[int(i) for s in scenes for i in s.obj_ids.tolist()],
            object_index=torch.cat([s.obj_index for s in scenes]),
            image_index=torch.cat([torch.full((s.num_instances,), k, dtype=torch.int64) for k, s in enumerate(scenes)]),
            T_gt=T_gt, T_init=T_init, mask_visible=torch.cat([s.mask_visible for s in scenes]))
