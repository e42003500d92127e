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


def test_a_tiny_hf_model_in_a_hand_written_loop_keeps_the_ledger_the_cli_would(tiny_opt, tmp_path):
    from transformers import AutoModelForCausalLM

    from zofw.plugins import registries
    from zofw.privacy.compare import calibrate
    from zofw.privacy.ledger import PrivacyLedger

    model = AutoModelForCausalLM.from_pretrained(str(tiny_opt), dtype=torch.float32).eval()
    generator = torch.Generator().manual_seed(0)
    data = torch.randint(3, 1000, (40, 12), generator=generator)  # 40 "examples" of 12 tokens

    def per_example_loss(rows: list[int]) -> torch.Tensor:
        ids = torch.zeros(40, 12, dtype=torch.long)  # one fixed-shape forward whoever is in the batch
        ids[:len(rows)] = data[rows] if rows else ids[:0]
        logits = model(input_ids=ids).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none").mean(1)
        return loss[:len(rows)]

    steps, q = 6, 4 / 40
    opt = zofw.PrivateZeroOrder(model, dataset_size=40, expected_batch=4, steps=steps, lr=1e-4, epsilon=3.0,
                                clip=5.0, trainable="bias", accountant="rdp", ledger_path=tmp_path / "ledger.json")
    bias_before = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("bias")}
    for _ in range(steps):
        rows = opt.sample()
        opt.step(lambda: per_example_loss(rows))
    assert any(not torch.equal(p, bias_before[n]) for n, p in model.named_parameters() if n in bias_before)
    sigma = calibrate(3.0, q, steps, 1e-5, {"rdp": registries()["accountants"].get("rdp").component(
        registries()["accountants"].get("rdp").component.Options())})["rdp"]  # what `zofw privacy calibrate` says
    (event,) = PrivacyLedger.load(tmp_path / "ledger.json").events
    assert (event.steps, event.sample_rate, event.mechanism) == (steps, q, "gaussian")
    assert event.noise_multiplier == pytest.approx(sigma, rel=1e-12)
    assert opt.epsilon() <= 3.0
