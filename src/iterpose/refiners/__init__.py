"""Pose refiners: the :class:`Refiner` interface, the shared LM / photometric machinery and the methods.

>>> from iterpose.refiners import RgbLM, RefineStatus
"""

from iterpose.refiners.base import RefineOutput, Refiner, RefineStatus, RefineTimings, classify_initial_poses
from iterpose.refiners.loading import load_refiner
from iterpose.refiners.registry import METHODS, make_refiner
from iterpose.refiners.rgb_lm import RgbLM, RgbLMConfig

__all__ = [
    "Refiner",
    "RefineOutput",
    "RefineStatus",
    "RefineTimings",
    "classify_initial_poses",
    "RgbLM",
    "RgbLMConfig",
    "METHODS",
    "make_refiner",
    "load_refiner",
]
