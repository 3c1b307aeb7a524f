"""`iterpose bench`: the JSON document, the printed table, the objects it uses and one-line errors on bad input."""

from __future__ import annotations

import json

import pytest
import torch

import iterpose.cli.main as cli_main
from iterpose.cli.bench_cmd import parse_counts
from iterpose.cli.main import main
from iterpose.data.synth_writer import write_models
from iterpose.errors import InvalidInputError
from iterpose.mesh import example_object
from iterpose.refiners import RgbLM
from iterpose.refiners.bench import BenchConfig, bench_refiner
from iterpose.refiners.checkpoint import object_registry, save_checkpoint_atomic
from iterpose.refiners.repose import ReposeConfig, ReposeRefiner, build_repose_net

COMPONENTS = {"features", "render", "lm", "other"}


@pytest.fixture(autouse=True)
def _only_bench_verb(monkeypatch):
    monkeypatch.setattr(cli_main, "VERB_MODULES", ("bench",))


@pytest.fixture(autouse=True)
def _keep_threads():
    """``--threads`` changes torch's and numba's thread counts for the process: restore them after each test."""
    import numba

    t, n = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(t)
    numba.set_num_threads(n)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A BOP models folder holding the example object as obj 1, written by iterpose's own writer."""
    root = tmp_path_factory.mktemp("bench")
    write_models(root, [example_object(1)])
    return root / "models"


@pytest.fixture(scope="module")
def repose_weights(tmp_path_factory):
    """An untrained, tiny RePOSE weights file for the example object (obj 1): timing does not need training."""
    obj = example_object(1)
    cfg = ReposeConfig(trunk="scratch", trunk_frozen=False, feature_channels=4, decoder_width=8, iterations=2)
    path = tmp_path_factory.mktemp("w") / "repose.pt"
    save_checkpoint_atomic(ReposeRefiner(build_repose_net({1: obj}, cfg, seed=3)).checkpoint(object_registry({1: obj})),
                           path)
    return path


def _run(argv, capsys):
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_rgb_lm_writes_the_json_and_prints_the_table(models_dir, tmp_path, capsys):
    out_json = tmp_path / "new" / "folder" / "bench.json"  # the folder is created
    code, out, err = _run(["--method", "rgb-lm", "--objects", "1,2", "--models", str(models_dir), "--device", "cpu",
                           "--json", str(out_json), "--repeats", "2", "--warmup", "1", "--threads", "1"], capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["method"] == "rgb-lm" and doc["device"] == "cpu"
    assert doc["iterations"] == RgbLM({1: example_object(1)}).default_iterations
    assert doc["image_size"] == [480, 640]
    assert doc["threads"] == 1 and doc["repeats"] == 2 and doc["warmup"] == 1
    assert set(doc["ms_per_image"]) == {"1", "2"} and set(doc["components_ms"]) == {"1", "2"}
    for n in ("1", "2"):
        assert doc["ms_per_image"][n] > 0
        assert set(doc["components_ms"][n]) == COMPONENTS
        parts = doc["components_ms"][n]
        assert parts["features"] == 0.0  # a training-free method has no feature network
        assert parts["render"] > 0 and parts["lm"] > 0 and parts["other"] >= 0
        assert parts["render"] + parts["lm"] <= doc["ms_per_image"][n] * 1.5  # parts of one call, not more
        assert doc["obj_ids"][n] == [1] * int(n)  # one object available: cycled
        assert doc["refined"][n] == int(n)
    assert isinstance(doc["machine"], dict) and doc["machine"]["torch_threads"] == 1
    assert not list(out_json.parent.glob(".*.tmp"))  # atomic write: no temporary file left
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if "ms/image" in ln)
    assert lines[header].split() == ["objects", "ms/image", "features", "render", "LM", "other"]
    rows = [ln.split() for ln in lines[header + 1:header + 3]]
    assert [r[0] for r in rows] == ["1", "2"] and all(len(r) == 6 for r in rows)
    assert [float(r[1]) for r in rows] == pytest.approx([doc["ms_per_image"]["1"], doc["ms_per_image"]["2"]],
                                                        abs=0.051)


def test_repose_times_the_feature_network_and_uses_the_weights_objects(repose_weights, tmp_path, capsys):
    out_json = tmp_path / "rep.json"
    code, out, err = _run(["--method", "repose", "--weights", str(repose_weights), "--objects", "2",
                           "--models", "example", "--json", str(out_json), "--repeats", "1", "--warmup", "0",
                           "--threads", "1"], capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["method"] == "repose" and doc["iterations"] == 2  # the weights' config
    assert doc["components_ms"]["2"]["features"] > 0 and doc["ms_per_image"]["2"] > 0
    assert doc["obj_ids"]["2"] == [1, 1]


def test_weights_objects_missing_from_the_models_folder_is_one_error(repose_weights, tmp_path, capsys):
    write_models(tmp_path, [example_object(2)])  # the weights know obj 1 only
    out_json = tmp_path / "x.json"
    code, _, err = _run(["--method", "repose", "--weights", str(repose_weights), "--objects", "1",
                         "--models", str(tmp_path / "models"), "--json", str(out_json)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "none of the objects" in err and "[1]" in err
    assert not out_json.exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--method", "magic", "--objects", "1"], "unknown method"),
        (["--method", "rgb-lm", "--objects", "1,x"], "comma list of positive ints"),
        (["--method", "rgb-lm", "--objects", "0,2"], "comma list of positive ints"),
        (["--method", "rgb-lm", "--objects", "1,-2"], "comma list of positive ints"),
        (["--method", "rgb-lm", "--objects", ""], "comma list of positive ints"),
        (["--method", "rgb-lm", "--objects", "2,2"], "each count once"),
        (["--method", "repose", "--objects", "1"], "needs weights"),
        (["--method", "rgb-lm", "--objects", "1", "--weights", "w.pt"], "takes no weights"),
        (["--method", "repose", "--objects", "1", "--weights", "nowhere.pt"], "does not exist"),
        (["--method", "deepim", "--objects", "1"], "needs weights"),
        (["--method", "rgb-lm", "--objects", "1", "--repeats", "0"], "--repeats must be >= 1"),
        (["--method", "rgb-lm", "--objects", "1", "--models", "no/such/dir"], "folder does not exist"),
    ],
)
def test_bad_input_is_one_line_with_status_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "--models" not in argv:
        argv = [*argv, "--models", "example"]
    code, out, err = _run([*argv, "--json", "out/b.json"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("iterpose bench: error:")
    assert needle in err
    assert not (tmp_path / "out").exists()


def test_missing_default_models_folder_says_to_pass_models(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../shared/data/lmo/models from here
    code, _, err = _run(["--method", "rgb-lm", "--objects", "1", "--json", "b.json"], capsys)
    assert code == 2 and "pass --models DIR" in err and len(err.strip().splitlines()) == 1


def test_parse_counts():
    assert parse_counts("1,2,4,8") == (1, 2, 4, 8)
    assert parse_counts(" 3 , 1") == (3, 1)
    for bad in ("", "1,", "1.5", "a", "1;2", "+1", "\u00b2"):
        with pytest.raises(InvalidInputError, match="comma list"):
            parse_counts(bad)


def test_bench_refiner_checks_its_inputs():
    with pytest.raises(InvalidInputError, match="counts"):
        BenchConfig(counts=(1, 0))
    with pytest.raises(InvalidInputError, match="warmup"):
        BenchConfig(warmup=-1)
    obj = example_object(1)
    with pytest.raises(InvalidInputError, match=r"objects \[2\] are not objects of the refiner"):
        bench_refiner(RgbLM({1: obj}), {2: example_object(2)}, BenchConfig(counts=(1,), repeats=1, warmup=0))


def test_deepim_and_the_cascade_are_timed_with_their_weights(repose_weights, tmp_path, capsys):
    from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner, build_deepim_model

    obj = example_object(1)
    cfg = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=3)
    deepim = tmp_path / "deepim.pt"
    save_checkpoint_atomic(DeepimRefiner(build_deepim_model({1: obj}, cfg)).checkpoint(object_registry({1: obj})),
                           deepim)
    common = ["--objects", "2", "--models", "example", "--repeats", "1", "--warmup", "0", "--threads", "1"]
    code, _, err = _run(["--method", "deepim", "--weights", str(deepim), "--json", str(tmp_path / "d.json"),
                         *common], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["method"] == "deepim" and doc["iterations"] == 3
    assert doc["components_ms"]["2"]["features"] > 0 and doc["components_ms"]["2"]["lm"] == 0
    code, _, err = _run(["--method", "deepim+repose", "--weights", str(repose_weights), "--weights", str(deepim),
                         "--json", str(tmp_path / "c.json"), *common], capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["method"] == "deepim+repose" and doc["iterations"] == 3 + 2
    assert doc["components_ms"]["2"]["lm"] > 0  # RePOSE's stage


def test_an_ensemble_is_timed_and_a_bad_member_is_one_error(repose_weights, tmp_path, capsys):
    out_json = tmp_path / "ens.json"
    code, _, err = _run(["--method", "rgb-lm,repose", "--weights", str(repose_weights), "--objects", "1",
                         "--models", "example", "--json", str(out_json), "--repeats", "1", "--warmup", "0",
                         "--threads", "1"], capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["method"] == "rgb-lm,repose" and doc["ms_per_image"]["1"] > 0
    code, _, err = _run(["--method", "rgb-lm,dope", "--objects", "1", "--models", "example", "--json",
                         str(tmp_path / "bad.json")], capsys)
    assert code == 2 and "unknown member(s) ['dope']" in err and not (tmp_path / "bad.json").exists()
