"""Shared fixtures: devices to test on, one tolerance table, and where the real LM-O data lives (optional)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# One table of tolerances, keyed by dtype: (rtol, atol).
TOLERANCES = {torch.float32: (1e-4, 1e-5), torch.float64: (1e-9, 1e-11)}

SHARED_DATA = Path(os.environ.get("ITERPOSE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request) -> torch.dtype:
    return request.param


def tol(dtype: torch.dtype) -> dict:
    """``rtol``/``atol`` keyword arguments for ``torch.testing.assert_close`` at ``dtype``."""
    rtol, atol = TOLERANCES[dtype]
    return {"rtol": rtol, "atol": atol}


@pytest.fixture
def lmo_dir() -> Path:
    """The real LM-O development data; tests that use it skip when ../shared/data is absent."""
    path = SHARED_DATA / "lmo"
    if not (path / "test_targets_bop19.json").exists():
        pytest.skip(f"real LM-O data not found at {path}")
    return path


@pytest.fixture
def lmo_init_dir() -> Path:
    path = SHARED_DATA / "lmo-init"
    if not (path / "kpt_lmo-test.csv").exists():
        pytest.skip(f"LM-O initial estimates not found at {path}")
    return path
