"""Lazy public surfaces (PEP 562): the evaluation path and the CLI start without torch; every public name resolves."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "numba", "trimesh", "matplotlib")
PACKAGES = ("iterpose", "iterpose.mesh", "iterpose.geometry", "iterpose.metrics", "iterpose.data")


def _run(code: str, env_extra: dict | None = None) -> str:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("OMP_WAIT_POLICY", None)
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_eval_path_and_cli_do_not_import_torch():
    out = _run("import sys, iterpose.metrics.evaluate, iterpose.cli.main, iterpose.data; print('torch' in sys.modules)")
    assert out.strip() == "False"


def test_cli_parser_public_surfaces_and_symmetries_stay_light():
    """Building the whole ``iterpose`` parser (every verb module), touching the package surfaces and computing
    a BOP symmetry set load none of torch, numba, trimesh, matplotlib."""
    code = (
        "import sys, json\n"
        "import iterpose, iterpose.mesh, iterpose.geometry, iterpose.metrics, iterpose.data\n"
        "import iterpose.cli.main as m\n"
        "m.build_parser()\n"
        "from iterpose.geometry.symmetry import bop_symmetry_transforms_np\n"
        "from iterpose.mesh import load_points_mm, load_models_info\n"
        "from iterpose.data import read_results_csv, BopDataset\n"
        "from iterpose.metrics import match_greedy, adi_for_matching, evaluate\n"
        "R, t = bop_symmetry_transforms_np(None, [((0, 0, 1), (0, 0, 0))])\n"
        f"print(json.dumps([R.shape[0], [h for h in {HEAVY!r} if h in sys.modules]]))\n"
    )
    n, loaded = json.loads(_run(code))
    assert n == 315
    assert loaded == []


def test_subpackages_are_attributes_imported_on_first_use():
    out = _run(
        "import sys, iterpose; a = 'iterpose.metrics' in sys.modules; m = iterpose.metrics; "
        "print(a, m.__name__, callable(m.evaluate), 'torch' in sys.modules)"
    )
    assert out.split() == ["False", "iterpose.metrics", "True", "False"]


def test_omp_wait_policy_default_is_kept():
    assert _run("import os, iterpose; print(os.environ['OMP_WAIT_POLICY'])").strip() == "PASSIVE"
    assert _run("import os, iterpose; print(os.environ['OMP_WAIT_POLICY'])", {"OMP_WAIT_POLICY": "ACTIVE"}).strip() == (
        "ACTIVE"
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_and_is_listed(package):
    mod = importlib.import_module(package)
    assert len(mod.__all__) == len(set(mod.__all__))
    listed = dir(mod)
    for name in mod.__all__:
        value = getattr(mod, name)
        assert value is not None, f"{package}.{name}"
        assert name in listed, f"{name} missing from dir({package})"
        if not isinstance(value, (types.ModuleType, str, float, int, tuple)) and hasattr(value, "__module__"):
            assert value.__module__.startswith("iterpose"), f"{package}.{name} comes from {value.__module__}"
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'no_such_name'"):
        getattr(mod, "no_such_name")


def test_names_come_from_their_modules():
    import iterpose
    import iterpose.data
    import iterpose.geometry
    import iterpose.mesh
    import iterpose.mesh.io
    import iterpose.metrics.evaluate  # the submodule: must not shadow the function below
    from iterpose.data.results_csv import read_results_csv
    from iterpose.geometry.symmetry import bop_symmetry_transforms
    from iterpose.mesh.model import ObjectModel
    from iterpose.mesh.ply_points import load_points_mm
    from iterpose.metrics import evaluate

    assert isinstance(evaluate, types.FunctionType) and evaluate.__module__ == "iterpose.metrics.evaluate"
    assert iterpose.ObjectModel is ObjectModel and iterpose.mesh.ObjectModel is ObjectModel
    assert iterpose.mesh.load_points_mm is load_points_mm is iterpose.mesh.io.load_points_mm
    assert iterpose.geometry.bop_symmetry_transforms is bop_symmetry_transforms
    assert iterpose.data.read_results_csv is read_results_csv
    assert iterpose.mesh is importlib.import_module("iterpose.mesh")  # sub-packages as attributes
