"""A tiny training configuration (the example object, 96 x 128 images, a small scratch network)."""

from __future__ import annotations

import pytest

from iterpose.data.synth import SynthConfig
from iterpose.refiners.repose import ReposeConfig
from iterpose.train.config import TrainConfig

TINY_SYNTH = SynthConfig(height=96, width=128, K=(150.0, 0.0, 64.0, 0.0, 150.0, 48.0, 0.0, 0.0, 1.0),
                         objects_per_image=(1, 2), distance_m=(0.35, 0.5), margin_px=8.0, distractors=(0, 1))
TINY_MODEL = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=2,
                          render_cell_rel=0.06)


def tiny_config(steps: int = 4, **changes) -> TrainConfig:
    base = dict(method="repose", steps=steps, batch_size=2, seed=5, log_every=1, synth=TINY_SYNTH, model=TINY_MODEL)
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture
def example_objects():
    from iterpose.mesh import example_object

    return {1: example_object()}
