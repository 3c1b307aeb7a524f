"""DeepIM (Li et al., ECCV 2018): zoomed render-and-compare, a network that regresses the relative pose, iterated.

- :mod:`.zoom`: the zoom-in boxes (projected object centre, rendered and observed extents) and box masks;
- :mod:`.network`: the encoder (MobileNetV2, 8 input channels) and the rotation / disentangled translation heads;
- :mod:`.model`: one iteration (zoom, render, compare, update) and the loop (:class:`DeepimModel`);
- :mod:`.refiner`: the :class:`~iterpose.refiners.Refiner` with divergence checks and score (:class:`DeepimRefiner`).

Training lives in :mod:`iterpose.train` (``iterpose train --method deepim``).
"""

from iterpose.refiners.deepim.config import DeepimConfig
from iterpose.refiners.deepim.model import DeepimModel, DeepimStep, apply_update, update_target
from iterpose.refiners.deepim.refiner import DeepimRefiner

__all__ = ["DeepimConfig", "DeepimModel", "DeepimStep", "DeepimRefiner", "apply_update", "update_target",
           "build_deepim_model", "build_zoom_model"]


def build_deepim_model(objects, config: DeepimConfig, seed: int = 0) -> DeepimModel:
    """A new (untrained) :class:`DeepimModel` for ``{obj_id: ObjectModel}``: render meshes simplified from the
    models, weights seeded by ``seed``, the encoder from ImageNet when ``config.trunk == "imagenet"``."""
    return build_zoom_model(DeepimModel, objects, config, seed)


def build_zoom_model(model_cls, objects, config, seed: int = 0):
    """``model_cls(meshes, config)`` (a model with a DeepIM-style ``.net``) for ``{obj_id: ObjectModel}``, as
    :func:`build_deepim_model` describes."""
    import torch  # noqa: PLC0415

    from iterpose.refiners.proxy_mesh import make_proxy_mesh  # noqa: PLC0415

    meshes = {int(k): make_proxy_mesh(m, config.render_cell_rel * m.diameter_m) for k, m in objects.items()}
    torch.manual_seed(seed)
    model = model_cls(meshes, config)
    if config.trunk == "imagenet":
        model.net.load_imagenet()
    return model
