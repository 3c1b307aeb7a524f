"""DeepIM on the generic trainer: weights that refine, a loss that learns, bit-identical resume, the CLI, and the
errors between methods (resume, --init-weights, weights files)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import yaml

from iterpose.cli.main import main
from iterpose.errors import InvalidInputError
from iterpose.refiners import load_refiner
from iterpose.refiners.deepim import DeepimConfig, DeepimRefiner
from iterpose.train import task_class
from iterpose.train.config import LossConfig, config_to_dict
from iterpose.train.trainer import read_train_checkpoint, train

from .conftest import tiny_config

DeepimTask = task_class("deepim")
TINY_DEEPIM = DeepimConfig(trunk="scratch", crop_size=64, trunk_blocks=5, head_width=16, iterations=2,
                           render_cell_rel=0.06)


def _config(steps: int = 3, **changes):
    return tiny_config(steps, **{"method": "deepim", "model": TINY_DEEPIM, **changes})


def _weights(run):
    return read_train_checkpoint(run / "last.pt")["weights"]


def test_training_writes_weights_that_refine_and_change(tmp_path, example_objects):
    run = tmp_path / "run"
    train(DeepimTask, example_objects, _config(3), run, progress=False)
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [1, 2, 3] and all(ln["loss"] > 0 for ln in lines)
    refiner = load_refiner(run / "final.pt", example_objects)
    assert isinstance(refiner, DeepimRefiner) and refiner.default_iterations == 2
    start = DeepimTask(example_objects, _config(3)).build_model().state_dict()
    after = _weights(run)
    changed = [k for k in start if not torch.equal(start[k], after[k])]
    assert any(k.startswith("net.rotation") for k in changed) and any(k.startswith("net.trunk") for k in changed)


def test_unrolled_iterations_each_add_a_loss(tmp_path, example_objects, monkeypatch):
    calls = []
    import iterpose.train.deepim_task as mod

    real = mod.disentangled_update_loss

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "disentangled_update_loss", counting)
    cfg = _config(1, loss=LossConfig(iterations=3))
    task = DeepimTask(example_objects, cfg)
    loss, stats = task.loss(task.build_model(), task.make_batch(0, 0), 0, 0, False)
    assert len(calls) == 3 and loss.requires_grad and 0 <= stats["recall_final"] <= 1


def test_a_few_steps_lower_the_loss_on_one_batch(example_objects):
    """Overfitting one batch: the disentangled loss must go down (the update is wired to the loss)."""
    torch.manual_seed(0)
    task = DeepimTask(example_objects, _config(1, batch_size=4))
    model = task.build_model().train()
    batch = task.make_batch(0, 0)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    losses = []
    for _ in range(50):
        loss, _ = task.loss(model, batch, 0, 0, False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert min(losses[-5:]) < 0.5 * losses[0], losses


def test_resume_reaches_bit_identical_weights(tmp_path, example_objects):
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(DeepimTask, example_objects, _config(4), straight, progress=False)
    train(DeepimTask, example_objects, _config(2), split, progress=False)
    train(DeepimTask, example_objects, _config(4), split, resume=True, progress=False)
    a, b = _weights(straight), _weights(split)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_init_weights_ignore_the_unrolled_iterations_but_not_the_model(tmp_path, example_objects):
    first = tmp_path / "first"
    train(DeepimTask, example_objects, _config(2), first, progress=False)
    second = tmp_path / "second"
    train(DeepimTask, example_objects, _config(3, loss=LossConfig(iterations=2)), second, progress=False,
          init_weights=first / "final.pt")
    assert read_train_checkpoint(second / "last.pt")["step"] == 3
    other = _config(2, model=dataclasses.replace(TINY_DEEPIM, head_width=8))
    with pytest.raises(InvalidInputError, match="another model config: .*head_width"):
        train(DeepimTask, example_objects, other, tmp_path / "third", progress=False, init_weights=first / "final.pt")
    with pytest.raises(InvalidInputError, match="holds a 'deepim' model, not 'repose'"):
        train(task_class("repose"), example_objects, tiny_config(2), tmp_path / "fourth", progress=False,
              init_weights=first / "final.pt")


def test_cli_train_and_cross_method_errors(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config_to_dict(_config(2))))
    run = tmp_path / "run"
    assert main(["train", "--method", "deepim", "--objects", "example", "--out", str(run), "--config", str(cfg),
                 "--no-progress", "--threads", "1"]) == 0
    assert "trained deepim to step 2" in capsys.readouterr().out
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(run), "--resume",
                 "--no-progress"]) == 2
    assert "is a 'deepim' run, not 'repose'" in capsys.readouterr().err
    assert main(["train", "--method", "repose", "--objects", "example", "--out", str(tmp_path / "r2"), "--config",
                 str(cfg), "--no-progress"]) == 2
    assert "sets method 'deepim' but --method is 'repose'" in capsys.readouterr().err


def test_init_weights_may_change_the_zoom_the_focus_and_the_test_settings(tmp_path, example_objects):
    first = tmp_path / "first"
    train(DeepimTask, example_objects, _config(1), first, progress=False)
    changed = dataclasses.replace(TINY_DEEPIM, zoom_margin=1.2, focus_px=4, iterations=3, max_rotation_deg=45.0)
    second = tmp_path / "second"
    train(DeepimTask, example_objects, _config(1, model=changed), second, progress=False,
          init_weights=first / "final.pt")
    assert load_refiner(second / "final.pt").config == changed
