"""Training of the learned refiners: a generic loop (:mod:`.trainer`), configs (:mod:`.config`), on-the-fly
synthetic batches (:mod:`.synth_batches`), losses (:mod:`.losses`) and one task per method (:mod:`.repose_task`).

>>> from iterpose.train import TASKS
>>> sorted(TASKS)
['deepim', 'repose', 'scorer']
"""

from __future__ import annotations

__all__ = ["TASKS", "task_class"]

TASKS = {"repose": "iterpose.train.repose_task:ReposeTask", "deepim": "iterpose.train.deepim_task:DeepimTask",
         "scorer": "iterpose.train.scorer_task:ScorerTask"}
"""Method name -> the task class the trainer uses (imported on demand)."""


def task_class(method: str):
    """The task class of ``method`` (InvalidInputError for a method that cannot be trained)."""
    import importlib  # noqa: PLC0415

    from iterpose.errors import InvalidInputError  # noqa: PLC0415

    if method not in TASKS:
        raise InvalidInputError(f"train: method {method!r} cannot be trained; choose one of {sorted(TASKS)}.")
    module, name = TASKS[method].split(":")
    return getattr(importlib.import_module(module), name)
