"""The Python API: `zofw.run` and `zofw.training` are the CLI's run, and `PrivateZeroOrder` in a user's own
loop takes exactly the steps a recipe's run takes (one implementation, not two)."""

from __future__ import annotations

import json
import tomllib

import pytest
import torch
from typer.testing import CliRunner

import zofw
from zofw.cli import app
from zofw.errors import BadInput
from zofw.evaluate import per_example_losses
from zofw.train import INSECURE_SECRET_ENV

from conftest import TOY_RECIPE, ToyModel, ToyTask


@pytest.fixture
def reproducible(monkeypatch):
    monkeypatch.setenv(INSECURE_SECRET_ENV, "5")


def test_run_from_a_dict_is_the_clis_run(toy_plugin, toy_recipe, tmp_path, reproducible):
    recipe = tomllib.loads(TOY_RECIPE)
    result = zofw.run(recipe, overrides=["train.steps=40"], out=tmp_path / "api")
    cli = CliRunner().invoke(app, ["run", str(toy_recipe), "--json", "--out", str(tmp_path / "cli"),
                                   "--set", "train.steps=40"])
    assert cli.exit_code == 0, cli.output
    record = json.loads(cli.stdout.strip().splitlines()[-1])
    assert result.metrics == record["metrics"] and result.epsilon == record["privacy"]["epsilon"]
    assert result.ledger.steps == 40 and result.run_dir == tmp_path / "api"
    assert isinstance(result.model, torch.nn.Module)
    assert recipe["train"]["steps"] == 300  # the caller's dict is not modified


def test_training_steps_one_at_a_time(toy_plugin, tmp_path, reproducible):
    stepping = zofw.training(tomllib.loads(TOY_RECIPE), ["train.steps=10"], out=tmp_path / "nb")
    before = stepping.evaluate()
    records = [stepping.step() for _ in range(4)]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and stepping.completed == 4 and not stepping.done
    stepping.checkpoint()
    assert (tmp_path / "nb" / "checkpoints" / "step-00000004" / "trainable.safetensors").exists()
    while not stepping.done:
        stepping.step()
    result = stepping.finish()
    assert result["steps"] == 10 and set(result["metrics"]) == set(before)


def test_bad_input_through_the_api_is_the_same_one_line_error(toy_plugin, tmp_path):
    with pytest.raises(BadInput, match="train.steps"):
        zofw.run(tomllib.loads(TOY_RECIPE), overrides=["train.steps=-1"], out=tmp_path / "x")


def test_private_zero_order_in_your_own_loop_takes_the_runs_steps(toy_plugin, tmp_path, reproducible):
    steps = 25
    stepping = zofw.training(tomllib.loads(TOY_RECIPE), [f"train.steps={steps}"], out=tmp_path / "run")
    stepping.run_to_end()
    ran = stepping.params.tensors[0].clone()

    # the same model, data and settings, in a loop the user writes
    recipe = tomllib.loads(TOY_RECIPE)
    task = ToyTask(ToyTask.Options())
    toy = ToyModel(ToyModel.Options())
    toy.load("classification")
    items = toy.encode(task.load("train", recipe["seed"]))
    opt = zofw.PrivateZeroOrder(toy.module, dataset_size=len(items), expected_batch=recipe["train"]["expected_batch"],
                                steps=steps, lr=recipe["train"]["lr"], epsilon=recipe["privacy"]["epsilon"],
                                delta=recipe["privacy"]["delta"], clip=recipe["clipper"]["bound"],
                                accountant=recipe["privacy"]["accountant"], seed=recipe["seed"],
                                estimator_options={"smoothing": recipe["estimator"]["smoothing"]})
    rows = stepping.rows
    for _ in range(steps):
        batch = [items[i] for i in opt.sample()]
        opt.step(lambda: per_example_losses(toy, batch, rows))
    assert torch.equal(toy.module.weight.detach().reshape(-1), ran.reshape(-1))  # bit for bit
    assert opt.ledger.steps == steps and opt.epsilon() == pytest.approx(
        stepping.parts.accountants["rdp"].epsilon(stepping.privacy.ledger.events, stepping.privacy.ledger.delta), rel=1e-9)
    assert opt.epsilon() <= recipe["privacy"]["epsilon"] + 1e-9
    with pytest.raises(BadInput, match="planned steps"):
        opt.step(lambda: per_example_losses(toy, [], rows))


def test_private_zero_order_refuses_settings_it_cannot_honour():
    model = torch.nn.Linear(3, 1)
    with pytest.raises(BadInput, match="exactly one of epsilon"):
        zofw.PrivateZeroOrder(model, dataset_size=100, expected_batch=10, steps=5, lr=0.1)
    with pytest.raises(BadInput, match="exceeds"):
        zofw.PrivateZeroOrder(model, dataset_size=100, expected_batch=200, steps=5, lr=0.1, epsilon=1.0)
    with pytest.raises(BadInput, match="selects no parameters"):
        zofw.PrivateZeroOrder(model, dataset_size=100, expected_batch=10, steps=5, lr=0.1, epsilon=1.0,
                              trainable="nothing-matches")
