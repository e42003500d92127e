"""Schedules: linear and cosine decay, the stagewise formula, the proximal pull, λ followed by the estimator, recipe checks."""

from __future__ import annotations

import json
import tomllib

import pytest
import torch
from typer.testing import CliRunner

from zofw.cli import app
from zofw.slots.estimator import UpdateContext
from zofw.testing import Quadratic
from zofw_zo.estimators import DPZero, SmoothingOptions
import math

from zofw_zo.schedules import Constant, Cosine, Linear, Stagewise, StagewiseOptions


def test_stages_double_in_length_and_shrink_the_step_size_and_lambda():
    schedule = Stagewise(StagewiseOptions(first_stage=10, lr_decay=0.5, smoothing_decay=0.25))
    plans = {step: schedule.plan(step, 1000) for step in range(1, 200)}
    starts = [step for step, plan in plans.items() if plan.new_anchor]
    assert starts == [1, 11, 31, 71, 151]  # stage s lasts 10·2^s steps
    for stage, (first, last) in enumerate(zip(starts, starts[1:] + [200])):
        for step in range(first, last):
            assert plans[step].lr_factor == 0.5**stage and plans[step].smoothing_factor == 0.25**stage
    assert Constant(Constant.Options()).plan(123, 1000).lr_factor == 1.0


@pytest.mark.parametrize("schedule", [Linear, Cosine])
def test_decays_run_from_the_recipe_values_to_the_final_fractions(schedule):
    chosen = schedule(schedule.Options(final_lr=0.1, final_smoothing=0.5))
    plans = [chosen.plan(step, 101) for step in range(1, 102)]
    assert plans[0].lr_factor == 1.0 and plans[0].smoothing_factor == 1.0
    assert math.isclose(plans[-1].lr_factor, 0.1) and math.isclose(plans[-1].smoothing_factor, 0.5)
    factors = [plan.lr_factor for plan in plans]
    assert all(a > b for a, b in zip(factors, factors[1:]))  # strictly decreasing
    progress = 0.5  # the midpoint: linear halfway, cosine (1 + cos π/2)/2 = 1/2 as well; a quarter differs
    assert math.isclose(plans[50].lr_factor, 0.1 + 0.9 * progress)
    quarter = (1 - 0.25) if schedule is Linear else 0.5 * (1 + math.cos(math.pi * 0.25))
    assert math.isclose(plans[25].lr_factor, 0.1 + 0.9 * quarter)
    assert chosen.changes_smoothing() and not schedule(schedule.Options()).changes_smoothing()


def test_the_estimator_probes_with_the_scheduled_lambda():
    problem = Quadratic()
    estimator = DPZero(SmoothingOptions(smoothing=0.1))
    estimator.smoothing_factor = 0.25
    seen = []  # the weights the model's forward sees (formed just in time, θ itself untouched)
    problem.model.register_forward_hook(
        lambda module, args, output: seen.append(torch.cat([module.weight.reshape(-1), module.bias.reshape(-1)])))
    start = problem.theta()
    estimator.per_example(problem.params, problem.losses, seed=3)
    estimator.update(problem.params, 3, torch.zeros(1, dtype=torch.float64), UpdateContext(1, 0.0, 0.0))
    # the +λ_t probe: θ + λ_t·u with λ_t = 0.025 (u ≈ N(0, I), so about 0.025 per coordinate on average)
    displacement = (seen[0] - start).norm() / start.numel() ** 0.5
    assert float(displacement) == pytest.approx(0.025, rel=0.3)
    torch.testing.assert_close(seen[0] - start, start - seen[1])  # and θ − λ_t·u


def test_the_proximal_pull_returns_toward_the_stage_start():
    problem = Quadratic()
    anchor = problem.params.snapshot()
    for tensor in problem.params.tensors:
        tensor.add_(1.0)
    before = (problem.theta() - torch.cat([a.reshape(-1) for a in anchor])).norm()
    problem.params.pull_toward_(anchor, 0.1)
    after = (problem.theta() - torch.cat([a.reshape(-1) for a in anchor])).norm()
    assert float(after) == pytest.approx(0.9 * float(before))


STAGEWISE = ["--set", 'schedule={name = "stagewise", first_stage = 20, proximal = 0.5}', "--set", "train.steps=100",
             "--set", "train.eval_every=0"]


def test_a_stagewise_run_records_its_schedule(toy_recipe, tmp_path):
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), "--json", *STAGEWISE])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["steps"] == 100
    resolved = tomllib.loads((tmp_path / "run" / "recipe.toml").read_text().split("\n", 1)[1])
    assert resolved["schedule"] == {"name": "stagewise", "first_stage": 20, "lr_decay": 0.5, "smoothing_decay": 0.5,
                                    "proximal": 0.5}


def test_a_schedule_that_changes_lambda_needs_an_estimator_that_follows_it(toy_recipe, tmp_path):
    from zofw.plugins import plugin_manager
    from zofw_zo.estimators import DPZero as Base
    from zofw import hookimpl

    class FixedLambda(Base):
        name = "fixed_lambda"
        follows_smoothing_schedule = False

    class Plugin:
        @hookimpl
        def register_estimators(self, register):
            register(FixedLambda)

    manager = plugin_manager()
    manager.register(Plugin(), name="fixed-lambda-test")
    try:
        result = CliRunner().invoke(app, ["validate", str(toy_recipe), *STAGEWISE,
                                          "--set", 'estimator={name = "fixed_lambda"}'])
    finally:
        manager.unregister(name="fixed-lambda-test")
    assert result.exit_code == 2 and "changes λ" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_loop_applies_the_proximal_pull(toy_recipe, tmp_path, monkeypatch):
    """Same secret stream, same data: only μ differs, so the trained model must differ."""
    from zofw.train import INSECURE_SECRET_ENV

    monkeypatch.setenv(INSECURE_SECRET_ENV, "7")
    losses = []
    for mu in (0.0, 5.0):
        out = tmp_path / f"run-{mu}"
        args = ["run", str(toy_recipe), "--out", str(out), "--json", "--set", "train.steps=60", "--set",
                "train.eval_every=0", "--set", f'schedule={{name = "stagewise", first_stage = 20, proximal = {mu}}}']
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        losses.append(json.loads(result.stdout.strip().splitlines()[-1])["metrics"]["loss"])
    assert losses[0] != losses[1]


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_a_decaying_run_ends_at_its_final_step_size(name, toy_recipe, tmp_path):
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), "--json",
                                      "--set", f'schedule={{name = "{name}", final_lr = 0.25}}',
                                      "--set", "train.steps=30", "--set", "train.eval_every=0"])
    assert result.exit_code == 0, result.output
    resolved = tomllib.loads((tmp_path / "run" / "recipe.toml").read_text().split("\n", 1)[1])
    assert resolved["schedule"]["name"] == name and resolved["schedule"]["final_lr"] == 0.25
