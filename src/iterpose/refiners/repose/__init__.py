"""RePOSE (Iwase et al., ICCV 2021): deep-texture rendering and a differentiable Levenberg-Marquardt step.

- :mod:`.features`: the image network (MobileNetV2 trunk to stride 8 + decoder), one pass per image;
- :mod:`.texture`: the learnable per-vertex latents and the shared MLP;
- :mod:`.model`: windows, deep-texture renders, the unrolled LM (:class:`ReposeNet`);
- :mod:`.refiner`: the :class:`~iterpose.refiners.Refiner` with accept test and score (:class:`ReposeRefiner`).

Training lives in :mod:`iterpose.train` (``iterpose train --method repose``).
"""

from iterpose.refiners.repose.config import ReposeConfig
from iterpose.refiners.repose.model import ReposeNet, ReposeTrace
from iterpose.refiners.repose.refiner import ReposeRefiner

__all__ = ["ReposeConfig", "ReposeNet", "ReposeTrace", "ReposeRefiner", "build_repose_net"]


def build_repose_net(objects, config: ReposeConfig, seed: int = 0) -> ReposeNet:
    """A new (untrained) :class:`ReposeNet` for ``{obj_id: ObjectModel}``: render meshes simplified from the
    models, texture latents seeded by ``seed``, the trunk from ImageNet when ``config.trunk == "imagenet"``."""
    import torch  # noqa: PLC0415

    from iterpose.refiners.proxy_mesh import make_proxy_mesh  # noqa: PLC0415
    from iterpose.refiners.repose.features import load_imagenet_trunk  # noqa: PLC0415

    meshes = {int(k): make_proxy_mesh(m, config.render_cell_rel * m.diameter_m) for k, m in objects.items()}
    torch.manual_seed(seed)
    net = ReposeNet(meshes, config, generator=torch.Generator().manual_seed(seed))
    if config.trunk == "imagenet":
        load_imagenet_trunk(net.features)
    return net
