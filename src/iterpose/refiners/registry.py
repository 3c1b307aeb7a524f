"""Refiners by name, for the CLI and :func:`make_refiner`: ``"rgb-lm"`` (training-free), ``"repose"`` and
``"deepim"`` (learned: need weights), the cascades ``"deepim+repose"`` (both weights files, in any order: each
file's method says which stage it is) and ``"deepim+rgb-lm"`` (DeepIM's weights only), and ensembles: two or more of
those joined by commas (e.g. ``"rgb-lm,deepim,deepim+rgb-lm"``), each run from the same initial poses and the
best-scored result kept (:class:`~iterpose.refiners.ensemble.EnsembleRefiner`; one weights file per learned method
they use)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from iterpose.errors import InvalidInputError
from iterpose.refiners.base import Refiner

__all__ = ["METHODS", "CASCADES", "ENSEMBLE_SEPARATOR", "ensemble_members", "learned_methods", "make_refiner",
           "check_method_and_weights"]

METHODS = ("rgb-lm", "repose", "deepim", "deepim+repose", "deepim+rgb-lm")
"""Method names accepted by :func:`make_refiner` and ``iterpose refine --method``."""

CASCADES = {"deepim+repose": ("deepim", "repose"), "deepim+rgb-lm": ("deepim", "rgb-lm")}
"""Cascade name -> its stages, in the order they run. A cascade that ends with ``rgb-lm`` is guarded by it: its
result must pass RGB-LM's accept test against the cascade's input (:class:`~iterpose.refiners.cascade.
CascadeRefiner`; on the LM-O dev images this kept DeepIM from making good initial poses worse)."""

ENSEMBLE_SEPARATOR = ","
"""Joins the members of an ensemble's method name (``"rgb-lm,deepim"``)."""

_LEARNED = ("repose", "deepim")


def ensemble_members(method: str) -> tuple[str, ...]:
    """The members of an ensemble's method name (``"rgb-lm,deepim"`` -> ``("rgb-lm", "deepim")``); ``(method,)``
    for any other name. Raises InvalidInputError for an unknown (or empty) member or a repeated one."""
    if ENSEMBLE_SEPARATOR not in method:
        return (method,)
    members = tuple(m.strip() for m in method.split(ENSEMBLE_SEPARATOR))
    unknown = [m for m in members if m not in METHODS]
    if unknown:
        raise InvalidInputError(f"make_refiner: ensemble {method!r} has unknown member(s) {unknown}; each member is "
                                f"one of {METHODS}.")
    if len(set(members)) != len(members):
        raise InvalidInputError(f"make_refiner: ensemble {method!r} names a member twice.")
    return members


Weights = str | Path | Sequence[str | Path] | None


def _weights_list(weights: Weights) -> list[Path]:
    if weights is None:
        return []
    if isinstance(weights, (str, Path)):
        return [Path(weights)]
    return [Path(w) for w in weights]


def learned_methods(method: str) -> list[str]:
    """The learned methods (``"repose"``, ``"deepim"``) whose weights ``method`` needs, each once, in the order its
    stages or members use them (``"deepim+repose"`` -> both; ``"rgb-lm,deepim,deepim+rgb-lm"`` -> ``["deepim"]``)."""
    stages = [s for m in ensemble_members(method) for s in CASCADES.get(m, (m,))]
    return list(dict.fromkeys(s for s in stages if s in _LEARNED))


def check_method_and_weights(method: str, weights: Weights) -> dict[str, tuple[dict, str]]:
    """Validate a method name and its weights without building anything (what the CLI checks before reading a
    dataset).

    Args:
        method: one of :data:`METHODS`, or an ensemble of them (:func:`ensemble_members`).
        weights: one weights file (a learned method), one per learned stage (a cascade) or per learned method used
            by an ensemble's members, or None (``rgb-lm``).

    Returns:
        ``{learned method: (checkpoint, source path)}`` for the method's learned stages (read and checked); empty
        for ``rgb-lm``.

    Raises:
        InvalidInputError: unknown method, weights given to ``rgb-lm`` or missing for a learned method, weights of
            another method, the wrong number of files for a cascade.
        MissingFileError, DataFormatError: unreadable weights.
    """
    members = ensemble_members(method)
    if len(members) == 1 and method not in METHODS:
        raise InvalidInputError(f"make_refiner: unknown method {method!r}; choose one of {METHODS}, or two or more "
                                f"of them joined by {ENSEMBLE_SEPARATOR!r} (an ensemble).")
    files = _weights_list(weights)
    learned = learned_methods(method)
    if not learned:
        if files:
            raise InvalidInputError(f"make_refiner: method {method!r} is training-free and takes no weights, got "
                                    f"weights={', '.join(map(str, files))!r}; drop --weights.")
        return {}
    if len(files) != len(learned):
        example = " ".join(f"--weights weights/lmo-{s}.pt" for s in learned)
        what = "needs weights" if not files else f"needs {len(learned)} weights file(s), got {len(files)}"
        raise InvalidInputError(f"make_refiner: method {method!r} is learned and {what} ({example}, or a training "
                                f"run's final.pt).")
    from iterpose.refiners.checkpoint import read_refiner_checkpoint  # noqa: PLC0415
    from iterpose.refiners.loading import check_checkpoint_method  # noqa: PLC0415

    found: dict[str, tuple[dict, str]] = {}
    for path in files:
        ckpt = read_refiner_checkpoint(path)
        if len(learned) == 1:
            check_checkpoint_method(ckpt, learned[0], str(path))
        elif ckpt["method"] not in learned or ckpt["method"] in found:
            raise InvalidInputError(f"make_refiner: {method!r} needs one weights file per stage ({', '.join(learned)}); "
                                    f"{path} holds a {ckpt['method']!r} model"
                                    f"{' as does another file' if ckpt['method'] in found else ''}.")
        found[ckpt["method"]] = (ckpt, str(path))
    return found


def make_refiner(method: str, objects: Mapping[int, object], *, weights: Weights = None,
                 iterations: int | None = None, device: str = "cpu", hypotheses: int = 1,
                 hypothesis_angle_deg: float = 20.0, scorer: str | Path | None = None) -> Refiner:
    """Build a refiner.

    Args:
        method: one of :data:`METHODS`, or two or more of them joined by commas: an ensemble
            (:class:`~iterpose.refiners.ensemble.EnsembleRefiner`), its members built as here, judged by an ``RgbLM``.
        objects: ``{obj_id: ObjectModel}`` the refiner works on.
        weights: the checkpoint of a learned method (required for them; ``rgb-lm`` takes none); for a cascade, one
            per learned stage, in any order; for an ensemble, one per learned method its members use.
        iterations: override of the method's default number of iterations (not for a cascade or an ensemble: set
            its stages' or members').
        device: torch device of a learned method's network.
        hypotheses: above 1, the method runs from this many rotated copies of each initial pose and the result
            whose outline best matches the image is kept (:class:`~iterpose.refiners.hypotheses.
            MultiHypothesisRefiner`, about ``hypotheses`` times the cost).
        hypothesis_angle_deg: the rotation of each extra hypothesis (degrees).
        scorer: a pose-scorer weights file (``iterpose train --method scorer``) that ranks the hypotheses by
            predicted error instead of the outline score (needs ``hypotheses >= 2``).

    Raises:
        InvalidInputError: as :func:`check_method_and_weights`, weights for other objects, iterations for a
            cascade or an ensemble.
        MissingFileError, DataFormatError: unreadable weights.
    """
    if isinstance(hypotheses, bool) or not isinstance(hypotheses, int) or hypotheses < 1:
        raise InvalidInputError(f"make_refiner: hypotheses must be an int >= 1, got {hypotheses!r}.")
    if scorer is not None and hypotheses == 1:
        raise InvalidInputError("make_refiner: a scorer ranks hypotheses; give hypotheses >= 2 with it "
                                "(--hypotheses 7 --scorer FILE).")
    refiner = _build(method, objects, check_method_and_weights(method, weights), iterations, device)
    if hypotheses == 1:
        return refiner
    from iterpose.refiners.hypotheses import MultiHypothesisRefiner  # noqa: PLC0415

    pose_scorer = None
    if scorer is not None:
        from iterpose.refiners.scorer import load_scorer  # noqa: PLC0415

        pose_scorer = load_scorer(scorer, objects).to(device)
    return MultiHypothesisRefiner(refiner, hypotheses, hypothesis_angle_deg, scorer=pose_scorer)


def _build(method: str, objects, ckpts: dict, iterations: int | None, device: str,
           singles: dict[str, Refiner] | None = None) -> Refiner:
    """``method`` built from checkpoints already read and checked (:func:`check_method_and_weights`'s result).

    ``singles``: single-method refiners already built for this ensemble, by method name; a cascade's stage or a
    member that names one of them is that same object (so the ensemble can run it once)."""
    members = ensemble_members(method)
    if len(members) > 1:
        if iterations is not None:
            raise InvalidInputError(f"make_refiner: {method!r} runs each member's default iterations; iterations "
                                    f"cannot be overridden for an ensemble.")
        from iterpose.refiners.ensemble import EnsembleRefiner  # noqa: PLC0415
        from iterpose.refiners.rgb_lm import RgbLM  # noqa: PLC0415

        singles = {}
        built = [_build(m, objects, ckpts, None, device, singles) for m in members]
        judge = next((m for m in built if type(m) is RgbLM), None) or RgbLM(objects)  # an rgb-lm member's defaults
        return EnsembleRefiner(built, judge, name=method)
    if method in CASCADES:
        if iterations is not None:
            raise InvalidInputError(f"make_refiner: {method!r} runs each stage's default iterations; iterations "
                                    f"cannot be overridden for a cascade.")
        from iterpose.refiners.cascade import CascadeRefiner  # noqa: PLC0415

        stages = [_shared_single(s, objects, ckpts, device, singles) for s in CASCADES[method]]
        guard = stages[-1] if CASCADES[method][-1] == "rgb-lm" else None
        return CascadeRefiner(stages, name=method, guard=guard)
    if iterations is None:
        return _shared_single(method, objects, ckpts, device, singles)
    return _single(method, objects, ckpts, iterations, device)


def _shared_single(method: str, objects, ckpts: dict, device: str, singles: dict[str, Refiner] | None) -> Refiner:
    """The single method with its default iterations, taken from (and added to) ``singles`` when given."""
    if singles is None:
        return _single(method, objects, ckpts, None, device)
    if method not in singles:
        singles[method] = _single(method, objects, ckpts, None, device)
    return singles[method]


def _single(method: str, objects, ckpts: dict, iterations: int | None, device: str) -> Refiner:
    if method in ckpts:
        from iterpose.refiners.loading import refiner_from_checkpoint  # noqa: PLC0415

        ckpt, source = ckpts[method]
        refiner = refiner_from_checkpoint(ckpt, source, objects, device)
        if iterations is not None:
            refiner.default_iterations = iterations
        return refiner
    from iterpose.refiners.rgb_lm import RgbLM, RgbLMConfig  # noqa: PLC0415

    config = RgbLMConfig() if iterations is None else RgbLMConfig(iterations=iterations)
    return RgbLM(objects, config)
