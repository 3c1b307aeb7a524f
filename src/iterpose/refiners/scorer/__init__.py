"""The learned pose scorer: predicts how far a candidate pose is from the truth (ADD(-S) in diameters) from the
image, to choose among refined hypotheses (:class:`~iterpose.refiners.hypotheses.MultiHypothesisRefiner`)."""

from __future__ import annotations

from iterpose.refiners.scorer.config import ScorerConfig
from iterpose.refiners.scorer.model import ScorerModel, ScorerNet
from iterpose.refiners.scorer.scorer import PoseScorer, load_scorer, read_scorer_checkpoint

__all__ = ["ScorerConfig", "ScorerModel", "ScorerNet", "PoseScorer", "load_scorer", "read_scorer_checkpoint",
           "build_scorer_model"]


def build_scorer_model(objects, config: ScorerConfig, seed: int = 0) -> ScorerModel:
    """A new (untrained) :class:`ScorerModel` for ``{obj_id: ObjectModel}``: render meshes simplified from the
    models, weights seeded by ``seed``, the encoder from ImageNet when ``config.trunk == "imagenet"``."""
    import torch  # noqa: PLC0415

    from iterpose.refiners.proxy_mesh import make_proxy_mesh  # noqa: PLC0415

    meshes = {int(k): make_proxy_mesh(m, config.render_cell_rel * m.diameter_m) for k, m in objects.items()}
    torch.manual_seed(seed)
    model = ScorerModel(meshes, config)
    if config.trunk == "imagenet":
        model.net.load_imagenet()
    return model
