"""Geometry test helpers: the shared tolerance table (from tests/conftest.py) as a fixture."""

from __future__ import annotations

import pytest


@pytest.fixture
def tols(request, dtype) -> dict:
    """``rtol``/``atol`` for ``torch.testing.assert_close`` at the parametrised ``dtype`` (tests/conftest.py table)."""
    for plugin in request.config.pluginmanager.get_plugins():
        if hasattr(plugin, "TOLERANCES") and callable(getattr(plugin, "tol", None)):
            return plugin.tol(dtype)
    raise RuntimeError("tests/conftest.py with TOLERANCES and tol() was not loaded")
