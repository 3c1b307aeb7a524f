"""Every weights file under weights/ stays within the size limit and loads, strictly, against the objects it was
trained for (the LM-O files need ../shared/data and skip without it)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

import iterpose
from iterpose.mesh import example_object
from iterpose.refiners.checkpoint import read_refiner_checkpoint
from iterpose.refiners.scorer import PoseScorer, load_scorer

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
SHIPPED = sorted(WEIGHTS.glob("*.pt"))
MAX_BYTES = 25_000_000
"""the project's limit on a weights file (25 MB)."""


def test_there_are_weights_files():
    names = {p.name for p in SHIPPED}
    assert {"example-repose.pt", "example-deepim.pt", "lmo-repose.pt", "lmo-deepim.pt", "lmo-scorer.pt"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_weights_file_size(path):
    assert path.stat().st_size <= MAX_BYTES


def _load(path: Path, objects: dict):
    method = read_refiner_checkpoint(path)["method"]
    if method == "scorer":
        return method, load_scorer(path, objects)
    return method, iterpose.load_refiner(path, objects)


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.name.startswith("example-")], ids=lambda p: p.name)
def test_example_weights_load_for_the_example_object(path):
    method, model = _load(path, {1: example_object()})
    assert method in path.name and model is not None


@functools.lru_cache(maxsize=1)
def _objects(models: Path) -> dict:
    return iterpose.load_objects(models)


@pytest.fixture
def lmo_objects(lmo_dir):
    return _objects(lmo_dir / "models")


@pytest.mark.parametrize("path", [p for p in SHIPPED if p.name.startswith("lmo-")], ids=lambda p: p.name)
def test_lmo_weights_load_for_the_lmo_models(path, lmo_objects):
    method, model = _load(path, lmo_objects)
    assert path.name.startswith(f"lmo-{method}")
    if method == "scorer":
        assert isinstance(model, PoseScorer)
    else:
        assert model.method == method
    if method == "deepim":  # both DeepIM files were exported with the 2 test iterations chosen on the dev images
        assert model.default_iterations == 2
