"""RGB-LM: the training-free render-and-compare refiner (region + photometric Levenberg-Marquardt)."""

from iterpose.refiners.rgb_lm.config import RgbLMConfig
from iterpose.refiners.rgb_lm.refiner import RgbLM

__all__ = ["RgbLM", "RgbLMConfig"]
