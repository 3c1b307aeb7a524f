"""Training RePOSE: the model, the batches and the loss, for the generic :mod:`iterpose.train.trainer`.

Loss per batch = pose loss of the unrolled LM (:func:`iterpose.train.losses.trace_pose_loss`: ADD, ADD-S for
symmetric objects, in diameters) + ``feature_weight`` x feature consistency: in each object's window, the image
features should equal the deep texture rendered at the ground-truth pose on the object's visible pixels, and 0
where no target is visible (the rendered background is 0, so the silhouette becomes an edge in both).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iterpose.refiners.checkpoint import object_registry
from iterpose.refiners.repose import ReposeConfig, ReposeNet, ReposeRefiner, build_repose_net
from iterpose.train.losses import trace_pose_loss
from iterpose.train.synth_batches import SynthBatch
from iterpose.train.task_base import SynthTask

__all__ = ["ReposeTask"]


class ReposeTask(SynthTask):
    """What the generic trainer needs to train RePOSE on ``{obj_id: ObjectModel}``."""

    method = "repose"
    model_config_cls = ReposeConfig

    def build_model(self) -> ReposeNet:
        return build_repose_net(self.objects, self.config.model, self.config.seed)

    def param_groups(self, model: ReposeNet) -> list[dict]:
        lr = self.config.optim.lr
        tex = [p for n, p in model.named_parameters() if n.startswith("texture.latents") and p.requires_grad]
        rest = [p for n, p in model.named_parameters() if not n.startswith("texture.latents") and p.requires_grad]
        return [{"params": rest, "lr": lr}, {"params": tex, "lr": lr * self.config.optim.texture_lr_scale}]

    def loss(self, model: ReposeNet, batch: SynthBatch, step: int, rank: int, amp: bool
             ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        dev = batch.images.device
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
            F_img = model.features(batch.images)
        F_img = F_img.float()
        trace = model.refine_features(F_img, tuple(batch.images.shape[-2:]), batch.K, batch.object_ids,
                                      batch.T_init, batch.image_index,
                                      cfg.loss.iterations or cfg.model.iterations)
        points, diameter, symmetric = self.pose_targets(batch, step, rank)
        pose_loss, errs = trace_pose_loss(trace.poses, batch.T_gt, points, diameter, symmetric,
                                          cfg.loss.iteration_weight, cfg.loss.max_rel_error)
        feat_loss = self.feature_consistency(model, F_img, batch, trace.windows)
        loss = pose_loss + cfg.loss.feature_weight * feat_loss
        stats = {"loss": float(loss.detach()), "pose_loss": float(pose_loss.detach()),
                 "feature_loss": float(feat_loss.detach()), "err_init": float(errs[0].clamp(max=1).mean()),
                 "err_final": float(errs[-1].clamp(max=1).mean()),
                 "recall_init": float((errs[0] < 0.1).float().mean()),
                 "recall_final": float((errs[-1] < 0.1).float().mean()),
                 "lambda": float(trace.lambdas.mean()) if trace.lambdas.numel() else 0.0,
                 "objects": float(len(batch.object_ids))}
        return loss, stats

    @staticmethod
    def feature_consistency(model: ReposeNet, F_img: torch.Tensor, batch: SynthBatch, win) -> torch.Tensor:
        """Mean over the windows' valid pixels of ``|F_obs - F_gt|²`` on the object's visible pixels and
        ``|F_obs|²`` where no target is visible (other targets' pixels are ignored), per channel."""
        s = model.config.feature_stride
        h, w = F_img.shape[-2:]
        vis = batch.mask_visible[:, ::s, ::s][:, :h, :w].float()  # feature pixel (i, j) = image pixel (s i, s j)
        vis = F.pad(vis, (0, w - vis.shape[-1], 0, h - vis.shape[-2]))
        N = vis.shape[0]
        B = F_img.shape[0]
        any_target = torch.zeros(B, h, w, device=vis.device).index_add_(0, batch.image_index.to(vis.device), vis) > 0
        F_obs, valid = model.observed_windows(F_img, batch.image_index, win)
        own, _ = model.observed_windows(vis[:, None], torch.arange(N), win)
        none, _ = model.observed_windows((~any_target).float()[:, None], batch.image_index, win)
        rend = model.render(batch.object_ids, batch.T_gt, win)
        own = own[:, 0] * rend.mask.float() * valid.float()
        none = none[:, 0] * valid.float()
        err = (F_obs - rend.features).square().mean(1) * own + F_obs.square().mean(1) * none
        return err.sum() / (own.sum() + none.sum()).clamp_min(1.0)

    def export(self, model: ReposeNet) -> dict:
        """The weights-file dict (``final.pt``) of a trained model."""
        net = ReposeNet(model.meshes, model.config)
        net.load_state_dict(model.state_dict())
        return ReposeRefiner(net).checkpoint(object_registry(self.objects))
