"""The generic trainer on RePOSE: outputs, exact resume, interruption, config checks, DDP with 2 processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from iterpose.cli.main import main
from iterpose.errors import InvalidInputError
from iterpose.refiners import load_refiner
from iterpose.refiners.repose import ReposeRefiner
from iterpose.train import task_class
from iterpose.train.config import config_to_dict
from iterpose.train.synth_batches import SynthBatchSource
from iterpose.train.trainer import read_train_checkpoint, train

from .conftest import tiny_config

ReposeTask = task_class("repose")


def _weights(run: Path) -> dict:
    return read_train_checkpoint(run / "last.pt")["weights"]


def test_training_writes_its_files_and_weights_that_refine(tmp_path, example_objects):
    run = tmp_path / "run"
    result = train(ReposeTask, example_objects, tiny_config(3), run, progress=False)
    assert result.steps == 3 and result.samples_per_s > 0
    for name in ("config.yaml", "last.pt", "final.pt", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert list((run / "tb").iterdir())
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [1, 2, 3] and all(ln["loss"] > 0 for ln in lines)
    assert yaml.safe_load((run / "config.yaml").read_text()) == config_to_dict(tiny_config(3))
    refiner = load_refiner(run / "final.pt", example_objects)
    assert isinstance(refiner, ReposeRefiner)
    for k, v in refiner.net.state_dict().items():
        assert torch.equal(v, _weights(run)[k]), k


def test_training_changes_the_weights(tmp_path, example_objects):
    run = tmp_path / "run"
    train(ReposeTask, example_objects, tiny_config(2), run, progress=False)
    start = ReposeTask(example_objects, tiny_config(2)).build_model().state_dict()
    after = _weights(run)
    changed = [k for k in start if not torch.equal(start[k], after[k])]
    assert any(k.startswith("features.head") for k in changed)
    assert any(k.startswith("texture.latents") for k in changed)


def test_resume_reaches_bit_identical_weights(tmp_path, example_objects):
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(ReposeTask, example_objects, tiny_config(4), straight, progress=False)
    train(ReposeTask, example_objects, tiny_config(2), split, progress=False)
    assert read_train_checkpoint(split / "last.pt")["step"] == 2
    result = train(ReposeTask, example_objects, tiny_config(4), split, resume=True, progress=False)
    assert result.steps == 4
    a, b = _weights(straight), _weights(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(ln)["step"] for ln in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_resume_accepts_a_checkpoint_written_before_a_setting_existed(tmp_path, example_objects):
    """A key missing from an older last.pt behaved as its default: resuming with the default is allowed."""
    run = tmp_path / "run"
    train(ReposeTask, example_objects, tiny_config(1), run, progress=False)
    ckpt = torch.load(run / "last.pt", weights_only=True)
    del ckpt["config"]["model"]["select_best_iterate"]
    torch.save(ckpt, run / "last.pt")
    assert train(ReposeTask, example_objects, tiny_config(2), run, resume=True, progress=False).steps == 2


def test_interruption_saves_the_last_step(tmp_path, example_objects, monkeypatch):
    original = SynthBatchSource.batch

    def stop_at_3(self, step, rank=0):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step, rank)

    monkeypatch.setattr(SynthBatchSource, "batch", stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        train(ReposeTask, example_objects, tiny_config(6), tmp_path / "run", progress=False)
    assert read_train_checkpoint(tmp_path / "run" / "last.pt")["step"] == 3
    assert not (tmp_path / "run" / "final.pt").exists()


def test_run_directory_guards(tmp_path, example_objects):
    run = tmp_path / "run"
    with pytest.raises(InvalidInputError, match="no last.pt"):
        train(ReposeTask, example_objects, tiny_config(1), run, resume=True, progress=False)
    train(ReposeTask, example_objects, tiny_config(1), run, progress=False)
    with pytest.raises(InvalidInputError, match="already holds a training run"):
        train(ReposeTask, example_objects, tiny_config(1), run, progress=False)
    with pytest.raises(InvalidInputError, match=r"batch_size: 2 \(run\) vs 3 \(now\)"):
        train(ReposeTask, example_objects, tiny_config(2, batch_size=3), run, resume=True, progress=False)
    ckpt = torch.load(run / "last.pt", weights_only=True)
    ckpt["method"] = "deepim"
    torch.save(ckpt, run / "last.pt")
    with pytest.raises(InvalidInputError, match="is a 'deepim' run"):
        train(ReposeTask, example_objects, tiny_config(2), run, resume=True, progress=False)


def test_init_weights_start_a_new_run_from_a_weights_file(tmp_path, example_objects):
    first = tmp_path / "first"
    train(ReposeTask, example_objects, tiny_config(2), first, progress=False)
    second = tmp_path / "second"
    train(ReposeTask, example_objects, tiny_config(1), second, progress=False, init_weights=first / "final.pt")
    fresh = tmp_path / "fresh"
    train(ReposeTask, example_objects, tiny_config(1), fresh, progress=False)
    a, b, c = _weights(first), _weights(second), _weights(fresh)
    # one more step from the first run's weights: close to them, far from a fresh run's
    k = "features.head.weight"
    assert float((b[k] - a[k]).abs().max()) < float((c[k] - a[k]).abs().max())
    other = tiny_config(1, model=dataclasses.replace(tiny_config().model, feature_channels=5))
    with pytest.raises(InvalidInputError, match="another model config: feature_channels"):
        train(ReposeTask, example_objects, other, tmp_path / "third", progress=False,
              init_weights=first / "final.pt")


def test_weights_file_is_not_a_training_checkpoint(tmp_path, example_objects):
    run = tmp_path / "run"
    train(ReposeTask, example_objects, tiny_config(1), run, progress=False)
    with pytest.raises(Exception, match="training checkpoint"):
        load_refiner(run / "last.pt")


# -- the command line ------------------------------------------------------------------------------------------------


def _write_tiny_config(path: Path, **extra) -> Path:
    cfg = config_to_dict(tiny_config(2))
    cfg.update(extra)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_train_and_resume(tmp_path, capsys):
    cfg = _write_tiny_config(tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--config", str(cfg),
                 "--no-progress", "--threads", "1"]) == 0
    assert "trained repose to step 2" in capsys.readouterr().out
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--steps", "3",
                 "--resume", "--no-progress"]) == 0
    assert read_train_checkpoint(run / "last.pt")["step"] == 3
    exported = tmp_path / "w" / "step3.pt"
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--export",
                 str(exported)]) == 0
    assert "at step 3" in capsys.readouterr().out
    net = load_refiner(exported).net
    for k, v in read_train_checkpoint(run / "last.pt")["weights"].items():
        assert torch.equal(net.state_dict()[k], v), k
    # test-time iterations chosen after training go into the weights file; the weights are the same
    assert load_refiner(exported).default_iterations == tiny_config(2).model.iterations != 3
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--export",
                 str(exported), "--iterations", "3"]) == 0
    assert load_refiner(exported).default_iterations == 3
    assert torch.equal(load_refiner(exported).net.state_dict()[k], v)


@pytest.mark.parametrize("argv, fragment", [
    (["--iterations", "2"], "--iterations goes with --export"),
    (["--export", "{out}", "--iterations", "0"], "must be a positive integer, got 0"),
])
def test_cli_export_iterations_errors(tmp_path, capsys, argv, fragment):
    cfg = _write_tiny_config(tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--config", str(cfg),
                 "--no-progress", "--threads", "1"]) == 0
    out = tmp_path / "w.pt"
    argv = [a.format(out=out) for a in argv]
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), *argv]) != 0
    assert fragment in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("content, fragment", [
    ({"optim": {"lr": 1e-3, "momentum": 0.9}}, "unknown config key 'optim.momentum'"),
    ({"batch_size": "eight"}, "config key 'batch_size': expected an integer"),
    ({"model": {"feature_channels": 2.5}}, "config key 'model.feature_channels': expected an integer"),
    ({"model": {"damping": "adaptive"}}, "config key 'model.damping': expected one of"),
    ({"synth": {"distance_m": [0.3]}}, "config key 'synth.distance_m': expected 2 values"),
    ({"colour": True}, "unknown config key 'colour'"),
])
def test_cli_config_errors_name_the_key(tmp_path, capsys, content, fragment):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(content))
    run = tmp_path / "run"
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--config",
                 str(cfg), "--no-progress"]) == 2
    assert fragment in capsys.readouterr().err
    assert not (run / "last.pt").exists()


def test_cli_resume_with_another_config_says_so(tmp_path, capsys):
    cfg = _write_tiny_config(tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--config", str(cfg),
                 "--no-progress"]) == 0
    other = _write_tiny_config(tmp_path / "other.yaml", seed=99)
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--config", str(other),
                 "--resume", "--no-progress"]) == 2
    assert "seed: 5 (run) vs 99 (now)" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    cfg = _write_tiny_config(tmp_path / "tiny.yaml")
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "iterpose",
         "train", "--method", "repose", "--objects", "example", "--out", str(run), "--config", str(cfg),
         "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_train_checkpoint(run / "last.pt")["step"] == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2  # only rank 0 writes
    assert (run / "final.pt").is_file()
    # rank 1's images took part: the weights differ from a single process's with the same config and seed
    single = tmp_path / "single"
    from iterpose.mesh import example_object

    train(ReposeTask, {1: example_object()}, tiny_config(2), single, progress=False)
    ddp, one = _weights(run), _weights(single)
    assert any(not torch.equal(ddp[k], one[k]) for k in ddp)
