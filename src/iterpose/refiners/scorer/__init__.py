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
    from iterpose.refiners.deepim import build_zoom_model  # noqa: PLC0415

    return build_zoom_model(ScorerModel, objects, config, seed)
