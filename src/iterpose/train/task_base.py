"""`SynthTask`: what every training task shares: its objects, on-the-fly synthetic batches, and the per-object
targets of the pose losses (sampled model points, diameters, which objects are symmetric)."""

from __future__ import annotations

import torch

from iterpose.train.config import TrainConfig
from iterpose.train.losses import sample_model_points
from iterpose.train.synth_batches import SynthBatch, SynthBatchSource, batch_generator

__all__ = ["SynthTask"]


class SynthTask:
    """Base of the tasks the generic trainer runs (:mod:`iterpose.train.trainer`); subclasses add ``method``,
    ``model_config_cls``, ``build_model``, ``param_groups``, ``loss`` and ``export``.

    Args:
        objects: ``{obj_id: ObjectModel}`` to train on. config: the run's config. world_size: DDP ranks.
    """

    def __init__(self, objects: dict, config: TrainConfig, world_size: int = 1) -> None:
        self.objects = dict(sorted(objects.items()))
        self.config = config
        self.source = SynthBatchSource(list(self.objects.values()), config.synth, config.noise, config.augment,
                                       config.batch_size, config.seed, world_size)
        self.symmetric = {k: bool(len(m.symmetries_discrete) or len(m.symmetries_continuous))
                          for k, m in self.objects.items()}

    def make_batch(self, step: int, rank: int) -> SynthBatch:
        return self.source.batch(step, rank)

    def pose_targets(self, batch: SynthBatch, step: int, rank: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(points [N, P, 3], diameter [N], symmetric [N] bool)`` of the batch's objects, on its device: ``P =
        config.loss.points`` model points drawn per object (a pure function of seed, step and rank)."""
        dev = batch.images.device
        gen = batch_generator(self.config.seed + 1, step, rank)
        ids = batch.object_ids
        points = torch.stack([sample_model_points(self.objects[i].vertices, self.config.loss.points, gen)
                              for i in ids]).to(dev)
        diameter = torch.tensor([self.objects[i].diameter_m for i in ids], device=dev)
        symmetric = torch.tensor([self.symmetric[i] for i in ids], device=dev)
        return points, diameter, symmetric
