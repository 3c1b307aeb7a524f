"""Training the pose scorer (:mod:`iterpose.refiners.scorer`): candidates around the ground truth, their ADD(-S)
errors as targets.

Per object of a synthetic batch, :data:`CANDIDATES` candidate poses are scored against the same observed box (the
batch's perturbed initial pose, as the initial estimate at test time):

1. the initial pose itself;
2. the ground truth with small noise (what a converged refinement looks like);
3. the ground truth with medium noise (near the 0.1-diameter threshold);
4. a *hard negative*: of :data:`MINED_ROTATIONS` rotations of the ground truth by :data:`HARD_DEG` (random axes,
   camera frame, about the object origin) that are wrong (ADD(-S) above :data:`HARD_MIN_ERROR_REL` diameters;
   small turns often are not: ADD(-S) at 0.1 d tolerates about 15°), the one whose silhouette overlaps the
   ground truth's most (mask IoU in a small crop): a wrong pose that an outline cannot tell from the truth, what
   refinement from a wrong start converges to.

Target: ``log(max(ADD(-S) / diameter, error_floor_rel))``. Loss: the smooth-L1 regression of the target plus a
pairwise logistic ranking loss between the candidates of one object whose targets differ by more than
:data:`RANK_MARGIN` (the choice among candidates is what the scorer is for).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from iterpose.data.perturb import PerturbConfig, perturb_poses
from iterpose.geometry.rotations import axis_angle_to_matrix
from iterpose.refiners.checkpoint import object_registry
from iterpose.refiners.crops import crop_intrinsics, sphere_crop_boxes
from iterpose.refiners.proxy_mesh import render_proxies
from iterpose.refiners.scorer import PoseScorer, ScorerConfig, ScorerModel, build_scorer_model
from iterpose.train.losses import point_matching_error
from iterpose.train.synth_batches import SynthBatch, batch_generator
from iterpose.train.task_base import SynthTask

__all__ = ["ScorerTask", "CANDIDATES", "MINED_ROTATIONS", "HARD_DEG", "HARD_MIN_ERROR_REL", "RANK_MARGIN",
           "mine_hard_negatives"]

CANDIDATES = 4
MINED_ROTATIONS = 12
HARD_DEG = (20.0, 90.0)
"""hard negatives are turned by an angle drawn uniformly in this range (degrees)."""
HARD_MIN_ERROR_REL = 0.15
"""hard negatives are at least this wrong (ADD(-S) / diameter) when any of the drawn rotations is."""
RANK_MARGIN = 0.3
"""log-error difference (about 35 %) below which two candidates are not ranked against each other."""
_SMALL = PerturbConfig(rot_std_deg=1.5, trans_std_m=(0.002, 0.002, 0.006))
_MEDIUM = PerturbConfig(rot_std_deg=5.0, trans_std_m=(0.003, 0.003, 0.012))
_MASK_SIZE = 32


def mine_hard_negatives(proxies: list, T_gt: torch.Tensor, K: torch.Tensor, count: int, generator: torch.Generator,
                        min_deg: float = HARD_DEG[0], max_deg: float = HARD_DEG[1],
                        error_rel=None, min_error_rel: float = HARD_MIN_ERROR_REL) -> torch.Tensor:
    """``[N, 4, 4]``: per object, of ``count`` rotations of ``T_gt [N, 4, 4]`` by ``min_deg``-``max_deg`` about
    random axes (camera frame, about the object origin), the one whose silhouette has the highest IoU with the
    ground truth's (``proxies``: N render meshes; ``K [N, 3, 3]``).

    ``error_rel``: optional function of ``[N, count, 4, 4]`` candidate poses giving their ``[N, count]`` errors
    (diameters); then only candidates above ``min_error_rel`` compete (all of them where none is)."""
    N = T_gt.shape[0]
    axes = F.normalize(torch.randn(N, count, 3, generator=generator, dtype=torch.float64), dim=2)
    angles = torch.empty(N, count, 1, dtype=torch.float64).uniform_(math.radians(min_deg), math.radians(max_deg),
                                                                     generator=generator)
    R = axis_angle_to_matrix(axes * angles).to(T_gt)  # [N, count, 3, 3]
    cand = T_gt[:, None].repeat(1, count, 1, 1)
    cand[..., :3, :3] = R @ cand[..., :3, :3]
    radius = torch.tensor([p.diameter_m / 2 for p in proxies], dtype=torch.float32)
    boxes = sphere_crop_boxes(K.float().cpu(), T_gt.float().cpu(), radius, 1.2)
    K_crop = crop_intrinsics(K.float().cpu(), boxes, _MASK_SIZE)
    gt = render_proxies(proxies, T_gt.float().cpu(), K_crop, _MASK_SIZE, with_albedo=False).mask
    many = render_proxies([p for p in proxies for _ in range(count)], cand.reshape(-1, 4, 4).float().cpu(),
                          K_crop.repeat_interleave(count, 0), _MASK_SIZE, with_albedo=False).mask
    many = many.view(N, count, _MASK_SIZE, _MASK_SIZE)
    inter = (many & gt[:, None]).flatten(2).sum(2).float()
    union = (many | gt[:, None]).flatten(2).sum(2).float().clamp_min(1.0)
    iou = inter / union
    if error_rel is not None:
        wrong = error_rel(cand).to(iou.device) > min_error_rel
        iou = torch.where(wrong | ~wrong.any(1, keepdim=True), iou, iou - 2.0)
    best = iou.argmax(1)
    return cand[torch.arange(N), best.to(cand.device)]


class ScorerTask(SynthTask):
    """What the generic trainer needs to train the pose scorer on ``{obj_id: ObjectModel}``."""

    method = "scorer"
    model_config_cls = ScorerConfig

    def build_model(self) -> ScorerModel:
        return build_scorer_model(self.objects, self.config.model, self.config.seed)

    def param_groups(self, model: ScorerModel) -> list[dict]:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": self.config.optim.lr}]

    def init_from(self, model: ScorerModel, ckpt: dict, source: str) -> None:
        """Start from a trained DeepIM's encoder (``ckpt``: a ``"deepim"`` weights file with the same encoder
        settings); the output layer keeps its fresh initialisation."""
        from iterpose.errors import InvalidInputError  # noqa: PLC0415

        if ckpt["method"] != "deepim":
            raise InvalidInputError(f"--init-weights {source} holds a {ckpt['method']!r} model; a scorer starts from "
                                    f"a 'scorer' or a 'deepim' one.")
        want = model.net.config.to_dict()
        for key in ("crop_size", "zoom_margin", "trunk_blocks", "head_width", "fusion"):
            if ckpt["config"].get(key, want[key]) != want[key]:
                raise InvalidInputError(f"--init-weights {source}: its DeepIM {key} is {ckpt['config'][key]!r}, "
                                        f"this scorer's {want[key]!r}.")
        shared = {k: v for k, v in ckpt["state_dict"].items() if k.startswith(("net.trunk.", "net.reduce.", "net.fc."))}
        missing, _ = model.load_state_dict(shared, strict=False)
        if [k for k in missing if not k.startswith("net.error.")]:
            raise InvalidInputError(f"--init-weights {source} lacks encoder weights: {missing[:4]}.")

    def candidates(self, model: ScorerModel, batch: SynthBatch, step: int, rank: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(poses [N, CANDIDATES, 4, 4], errors [N, CANDIDATES])``: the candidate poses of the batch's objects
        (module docstring) and their ADD(-S) / diameter; a pure function of (seed, step, rank)."""
        gen = batch_generator(self.config.seed + 2, step, rank)
        T_gt = batch.T_gt.float()
        K = batch.K[batch.image_index.to(batch.K.device)].float()
        proxies = [model.meshes[i] for i in batch.object_ids]
        points, diameter, symmetric = self.pose_targets(batch, step, rank)

        def error_rel(poses: torch.Tensor) -> torch.Tensor:  # [N, M, 4, 4] -> [N, M]
            M = poses.shape[1]
            err = point_matching_error(poses.reshape(-1, 4, 4), T_gt.repeat_interleave(M, 0).to(poses),
                                       points.repeat_interleave(M, 0).to(poses),
                                       symmetric.repeat_interleave(M, 0).to(poses.device))
            return err.view(-1, M) / diameter[:, None].to(poses)

        hard = mine_hard_negatives(proxies, T_gt.cpu(), K.cpu(), MINED_ROTATIONS, gen,
                                   error_rel=error_rel).to(T_gt.device)
        hard = perturb_poses(hard, _SMALL, gen)
        poses = torch.stack([batch.T_init.float(), perturb_poses(T_gt, _SMALL, gen),
                             perturb_poses(T_gt, _MEDIUM, gen), hard], dim=1)
        return poses, error_rel(poses)

    def loss(self, model: ScorerModel, batch: SynthBatch, step: int, rank: int, amp: bool
             ) -> tuple[torch.Tensor, dict[str, float]]:
        dev = batch.images.device
        C = CANDIDATES
        ids = batch.object_ids
        N = len(ids)
        K = batch.K[batch.image_index.to(dev)].float()
        cands, err = self.candidates(model, batch, step, rank)
        cands, err = cands.reshape(N * C, 4, 4), err.reshape(N * C)
        rep = lambda x: x.repeat_interleave(C, 0)  # noqa: E731
        target = err.clamp_min(self.config.model.error_floor_rel).log()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
            pred = model(batch.images, rep(K), [i for i in ids for _ in range(C)], cands,
                         rep(batch.image_index.to(dev)), rep(batch.T_init.float()))
        regression = F.smooth_l1_loss(pred, target)
        p, t = pred.view(N, C), target.view(N, C)
        dt = t[:, :, None] - t[:, None, :]  # [N, C, C]: > 0 where candidate i is worse than j
        pairs = dt > RANK_MARGIN
        dp = p[:, :, None] - p[:, None, :]
        ranking = F.softplus(-dp[pairs]).mean() if bool(pairs.any()) else pred.sum() * 0.0
        loss = regression + ranking
        good = err < 0.1
        stats = {"loss": float(loss.detach()), "regression": float(regression.detach()),
                 "ranking": float(ranking.detach()), "pair_accuracy": float((dp[pairs] > 0).float().mean())
                 if bool(pairs.any()) else 1.0,
                 "threshold_accuracy": float(((pred < math.log(0.1)) == good).float().mean()),
                 "positive_rate": float(good.float().mean()), "objects": float(N)}
        return loss, stats

    def export(self, model: ScorerModel) -> dict:
        """The weights-file dict (``final.pt``) of a trained model."""
        copy = ScorerModel(model.meshes, model.config)
        copy.load_state_dict(model.state_dict())
        return PoseScorer(copy).checkpoint(object_registry(self.objects))
