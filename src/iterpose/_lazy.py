"""Lazy package surfaces (PEP 562): public names are imported from their submodule on first use.

This keeps ``import iterpose.<package>`` light, e.g. the evaluation path never imports torch.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package`` (its ``__name__``).

    Args:
        package: the package's ``__name__``; it must be importing (its module is in ``sys.modules``).
        exports: public name -> submodule (relative to ``package``) that defines it.

    Returns:
        ``(__getattr__, __dir__)`` to assign at the package's module level. A name, once resolved, is stored in the
        package's namespace, so later look-ups do not go through ``__getattr__``.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
