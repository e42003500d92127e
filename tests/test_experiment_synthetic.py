"""`zofw experiment synthetic`: the DPZero paper's claim on the quadratic of effective rank ln d."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from zofw.cli import app
from zofw.experiments.synthetic import Problem, eigenvalues, run_method


def test_quick_log_d_mode_shows_dpgd0_growing_with_d_and_dpzero_nearly_not():
    result = CliRunner().invoke(app, ["experiment", "synthetic", "--quick", "--seeds", "3", "--mode", "log", "--json"])
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout.strip().splitlines()[-1])["log"]
    growth = {method: best[method]["2000"] / best[method]["20"] for method in ("dpzero", "dpgd0", "dpgd")}
    assert growth["dpgd0"] > 5 and growth["dpgd0"] > 3 * growth["dpzero"], growth


def test_the_hessian_has_the_stated_effective_rank_and_norm():
    for rank in (3.0, 4.47, 7.6):
        values = eigenvalues(rank)
        assert float(values.sum()) == rank and float(values.max()) == 1.0


def test_the_closed_form_difference_is_the_central_difference():
    """What run_method computes as uᵀA(θ − x_i) is (f(θ+λu) − f(θ−λu)) / 2λ at λ = 1e-4, in float64."""
    problem = Problem.build("sqrt", 100, 50, seed=0)
    a, x = problem.weights, problem.train
    theta = torch.randn(len(a), dtype=torch.float64)
    u = torch.randn(len(a), dtype=torch.float64)

    def f(point):
        return 0.5 * ((point - x) ** 2 * a).sum(1)

    central = (f(theta + 1e-4 * u) - f(theta - 1e-4 * u)) / 2e-4
    torch.testing.assert_close((a * u) @ (theta[:, None] - x.T), central, rtol=1e-7, atol=1e-9)


def test_no_privacy_noise_and_a_good_step_size_drive_dp_gd_to_the_minimum():
    problem = Problem.build("log", 20, 200, seed=1)
    theta = run_method("dpgd", problem, 200, torch.tensor([1.0]), torch.tensor([1e6]), sigma=0.0, seed=0)
    assert float(problem.gradient_norms(theta, problem.train_mean)[0]) < 1e-6


def test_an_unknown_mode_is_refused_in_one_line():
    result = CliRunner().invoke(app, ["experiment", "synthetic", "--quick", "--mode", "cubic"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_plot_writes_a_png_and_never_overwrites(tmp_path):
    import pytest

    pytest.importorskip("matplotlib")
    target = tmp_path / "figure.png"
    args = ["experiment", "synthetic", "--quick", "--seeds", "1", "--mode", "log", "--plot", str(target)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert target.read_bytes().startswith(b"\x89PNG")
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "exists" in again.stderr
