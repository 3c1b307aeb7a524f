"""Training DeepIM: the model, the batches and the loss, for the generic :mod:`iterpose.train.trainer`.

Per object, ``config.loss.iterations`` (default 1) DeepIM iterations from the perturbed initial pose, each on the
detached, re-rendered result of the previous one (DeepIM trains its iterations this way, with an optimiser step
each; here their losses are averaged into one step). Loss per iteration: the disentangled point-matching loss
(:func:`iterpose.train.losses.disentangled_update_loss`: ADD, or ADD-S for symmetric objects, in diameters), plus,
for a model with ``aux_heads``, ``loss.flow_weight`` x the flow loss and ``loss.mask_weight`` x the mask loss of
DeepIM's training-only heads (:mod:`iterpose.train.deepim_aux`).
"""

from __future__ import annotations

import torch

from iterpose.refiners.checkpoint import object_registry
from iterpose.refiners.deepim import DeepimConfig, DeepimModel, DeepimRefiner, build_deepim_model
from iterpose.train.deepim_aux import aux_losses, aux_targets
from iterpose.train.losses import disentangled_update_loss, point_matching_error
from iterpose.train.synth_batches import SynthBatch
from iterpose.train.task_base import SynthTask

__all__ = ["DeepimTask"]


class DeepimTask(SynthTask):
    """What the generic trainer needs to train DeepIM on ``{obj_id: ObjectModel}``."""

    method = "deepim"
    model_config_cls = DeepimConfig

    def build_model(self) -> DeepimModel:
        return build_deepim_model(self.objects, self.config.model, self.config.seed)

    def param_groups(self, model: DeepimModel) -> list[dict]:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": self.config.optim.lr}]

    def loss(self, model: DeepimModel, batch: SynthBatch, step: int, rank: int, amp: bool
             ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        dev = batch.images.device
        ids = batch.object_ids
        K = batch.K[batch.image_index.to(dev)].float()
        points, diameter, symmetric = self.pose_targets(batch, step, rank)
        observed_xyxy = model.observed_boxes(ids, batch.T_init, K)
        image_index = batch.image_index.to(dev)
        T = batch.T_init.float()
        err_init = point_matching_error(T, batch.T_gt, points, symmetric) / diameter
        aux = bool(model.config.aux_heads)
        losses, aux_stats, err = [], [], err_init
        for _ in range(cfg.loss.iterations or 1):
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
                out = model.iterate(batch.images, K, ids, T, image_index, observed_xyxy, aux=aux)
            loss_i, err = disentangled_update_loss(T, out.R_delta, out.v, batch.T_gt, K, out.crop_boxes, points,
                                                   diameter, symmetric, cfg.loss.max_rel_error)
            if aux:
                targets = aux_targets(out.inputs, T, batch.T_gt, batch.mask_visible)
                flow_loss, mask_loss, epe = aux_losses(out.aux, targets)
                loss_i = loss_i + cfg.loss.flow_weight * flow_loss + cfg.loss.mask_weight * mask_loss
                aux_stats.append(torch.stack([flow_loss.detach(), mask_loss.detach(), epe]))
            losses.append(loss_i)
            T = out.T_co.detach()
        loss = torch.stack(losses).mean()
        stats = {"loss": float(loss.detach()), "err_init": float(err_init.clamp(max=1).mean()),
                 "err_final": float(err.clamp(max=1).mean()), "recall_init": float((err_init < 0.1).float().mean()),
                 "recall_final": float((err < 0.1).float().mean()), "objects": float(len(ids))}
        if aux:
            flow_loss, mask_loss, epe = torch.stack(aux_stats).mean(0).tolist()
            stats.update(flow_loss=flow_loss, mask_loss=mask_loss, flow_epe_px=epe)
        return loss, stats

    def export(self, model: DeepimModel) -> dict:
        """The weights-file dict (``final.pt``) of a trained model."""
        copy = DeepimModel(model.meshes, model.config)
        copy.load_state_dict(model.state_dict())
        return DeepimRefiner(copy).checkpoint(object_registry(self.objects))
