"""Training configuration: frozen dataclasses, a strict loader for YAML config files, and YAML output.

A run's whole configuration is one :class:`TrainConfig` (its ``model`` field is the method's own config, e.g.
:class:`~iterpose.refiners.repose.ReposeConfig`). A config file holds any subset of its fields, nested as the
dataclasses are; an unknown key or a value of the wrong type is an :class:`~iterpose.errors.InvalidInputError`
naming the key path (``optim.lr``), never a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from iterpose.data.augment import AugmentConfig
from iterpose.data.synth import SynthConfig
from iterpose.errors import DataFormatError, InvalidInputError, IterposeError, MissingFileError
from iterpose.train.synth_batches import InitNoise

__all__ = ["OptimConfig", "LossConfig", "TrainConfig", "config_from_dict", "config_to_dict", "load_config_file",
           "merge_config_dicts", "TRAIN_K"]

TRAIN_K = (572.4114, 0.0, 160.0, 0.0, 573.57043, 120.0, 0.0, 0.0, 1.0)
"""Intrinsics of the default 320 x 240 training images: LM-O's focal lengths, centred principal point (the images
are native-resolution windows of an LM-O-like camera: the feature network is fully convolutional)."""


@dataclass(frozen=True)
class OptimConfig:
    """Adam with linear warm-up then cosine decay to ``min_lr_ratio * lr`` over the run's ``steps``.

    Attributes:
        lr: peak learning rate. weight_decay: Adam's (L2) weight decay. grad_clip: max global gradient norm.
        warmup_steps: linear warm-up length. min_lr_ratio: final learning rate / lr.
        texture_lr_scale: learning-rate factor of the per-vertex texture codes.
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    texture_lr_scale: float = 10.0


@dataclass(frozen=True)
class LossConfig:
    """Weights of the training loss.

    Attributes:
        iteration_weight: weight of the mean pose loss of the intermediate iterations (the final one has 1).
        feature_weight: weight of the feature-consistency term (image features vs the texture rendered at the
            ground truth on the object's visible pixels, and vs 0 where no target is visible; RePOSE: 0.1; more here
            to bootstrap the features while the unrolled LM's pose loss is still noisy).
        points: model points sampled per object for the pose loss.
        max_rel_error: per-object pose errors grow only logarithmically beyond this many diameters (a diverged
            sample does not dominate the batch).
        iterations: refinement iterations unrolled per training sample; 0: the method's default (RePOSE: its
            model's ``iterations``, gradients through all of them; DeepIM: 1, each further one on the detached,
            re-rendered result of the previous one). Not part of the model, so it can change between runs that
            continue from the same weights (e.g. 1 then 2 then 4 iterations, as Self6D++ ramps DeepIM).
        flow_weight, mask_weight: weights of DeepIM's training-only flow loss (smooth L1 in crop pixels) and mask
            loss (binary cross-entropy), per iteration; used only by a DeepIM model with ``aux_heads: true``.
    """

    iteration_weight: float = 0.3
    feature_weight: float = 0.3
    points: int = 500
    max_rel_error: float = 1.0
    iterations: int = 0
    flow_weight: float = 0.02
    mask_weight: float = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a training run (saved in every checkpoint and as ``config.yaml``).

    Attributes:
        method: the refiner trained (``"repose"``).
        steps: total optimisation steps. batch_size: images per step (per process under DDP).
        seed: seeds the model initialisation and every batch.
        checkpoint_every_s: seconds between writes of ``last.pt``. log_every: steps between TensorBoard points.
        amp: bfloat16 autocast of the image network on CUDA (ignored on the CPU).
        optim, loss: :class:`OptimConfig`, :class:`LossConfig`.
        synth: the synthetic training images (size, K, distances, clutter).
        noise: the initial-pose noise. augment: photometric augmentation (``null``: none).
        model: the method's config (a dict in files; e.g. :class:`~iterpose.refiners.repose.ReposeConfig`).
    """

    method: Literal["repose", "deepim", "scorer"] = "repose"
    steps: int = 20000
    batch_size: int = 8
    seed: int = 0
    checkpoint_every_s: float = 300.0
    log_every: int = 10
    amp: bool = True
    optim: OptimConfig = OptimConfig()
    loss: LossConfig = LossConfig()
    synth: SynthConfig = SynthConfig(height=240, width=320, K=TRAIN_K, objects_per_image=(1, 3),
                                     distance_m=(0.6, 1.3), margin_px=24.0)
    noise: InitNoise = InitNoise()
    augment: AugmentConfig | None = AugmentConfig()
    model: Any = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"TrainConfig.{name}: expected an int >= 1, got {v!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidInputError(f"TrainConfig.seed: expected an int >= 0, got {self.seed!r}.")
        if not self.checkpoint_every_s > 0:
            raise InvalidInputError(f"TrainConfig.checkpoint_every_s: expected > 0, got {self.checkpoint_every_s!r}.")
        for sub in ("optim", "loss"):
            for f in dataclasses.fields(getattr(self, sub)):
                v = getattr(getattr(self, sub), f.name)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise InvalidInputError(f"TrainConfig.{sub}.{f.name}: expected a number >= 0, got {v!r}.")


# -- dict <-> dataclass ----------------------------------------------------------------------------------------------


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value, tp, path: str):
    """``value`` (from YAML) as type ``tp``, or an InvalidInputError naming ``path``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except InvalidInputError as exc:
                errors.append(str(exc))
        raise InvalidInputError(errors[0] if errors else f"config key '{path}': bad value {value!r}.")
    if origin is Literal:
        if value not in args:
            raise InvalidInputError(f"config key '{path}': expected one of {list(args)}, got {value!r}.")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise InvalidInputError(f"config key '{path}': expected a mapping of {tp.__name__} fields, got {value!r}.")
        return _dataclass_from_dict(tp, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InvalidInputError(f"config key '{path}': expected a list, got {value!r}.")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{k}]") for k, v in enumerate(value))
        if len(value) != len(args):
            raise InvalidInputError(f"config key '{path}': expected {len(args)} values, got {len(value)}.")
        return tuple(_convert(v, a, f"{path}[{k}]") for k, (v, a) in enumerate(zip(value, args)))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(f"config key '{path}': expected a number, got {value!r}.")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"config key '{path}': expected an integer, got {value!r}.")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise InvalidInputError(f"config key '{path}': expected true or false, got {value!r}.")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise InvalidInputError(f"config key '{path}': expected a string, got {value!r}.")
        return value
    if not isinstance(value, tp):
        raise InvalidInputError(f"config key '{path}': expected {_type_name(tp)}, got {value!r}.")
    return value


def _dataclass_from_dict(cls, data: dict, path: str = ""):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{path}.{key}" if path else str(key)
            raise InvalidInputError(f"unknown config key '{where}' ({cls.__name__} has: {', '.join(sorted(names))}).")
    kwargs = {k: _convert(v, hints[k], f"{path}.{k}" if path else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except IterposeError as exc:
        raise InvalidInputError(f"config '{path or cls.__name__}': {exc}") from None


def config_from_dict(data: dict, model_config_cls, base: TrainConfig | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a (YAML) dict; ``data['model']`` becomes ``model_config_cls``. Keys not in
    ``data`` keep the value of ``base`` (or the defaults)."""
    if not isinstance(data, dict):
        raise InvalidInputError(f"a training config must be a mapping, got {type(data).__name__}.")
    base = base if base is not None else TrainConfig(model=model_config_cls())
    merged = merge_config_dicts(config_to_dict(base), data)
    model = merged.pop("model", None) or {}
    cfg = _dataclass_from_dict(TrainConfig, merged)
    return dataclasses.replace(cfg, model=_dataclass_from_dict(model_config_cls, model, "model"))


def merge_config_dicts(base: dict, over: dict, path: str = "") -> dict:
    """``base`` with the values of ``over`` (nested mappings merged key by key; a new dict)."""
    out = dict(base)
    for k, v in over.items():
        if k in ("model",) and path == "" and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_config_dicts(out[k], v, f"{path}.{k}")
        else:
            out[k] = v
    return out


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def config_to_dict(config) -> dict:
    """A YAML/JSON-able nested dict of a config dataclass (tuples as lists)."""
    return _plain(config)


def load_config_file(path: str | Path) -> dict:
    """The mapping in a YAML config file (safe loader); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataFormatError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataFormatError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}.")
    return data

