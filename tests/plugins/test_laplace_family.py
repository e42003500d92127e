"""DP-ZO with Laplace noise: the noise, the pure-DP accountant, the estimator, and the recipe checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from zofw.cli import app
from zofw.errors import BadInput
from zofw.privacy.ledger import PrivacyEvent, PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.estimator import UpdateContext
from zofw.testing import Quadratic, check_estimator
from zofw_privacy.accountants import PLDAccountant, PRVAccountant, PureDPAccountant, RDPAccountant
from zofw_zo.clippers import BoundOptions, ScalarClipper
from zofw_zo.estimators import DPZero, DPZOLaplace, SmoothingOptions
from zofw_zo.noise import GaussianNoise, LaplaceNoise


def test_laplace_noise_has_its_scale_and_comes_from_the_secure_stream():
    source = SecretStream.for_testing(5)
    draws = LaplaceNoise(LaplaceNoise.Options()).sample((400_000,), 2.0, source).numpy()
    assert abs(draws.mean()) < 0.02 and np.abs(draws).mean() == pytest.approx(2.0, rel=0.01)
    # Kolmogorov–Smirnov distance to Lap(0, 2): 400k draws put the 99.9% critical value near 0.003
    ordered = np.sort(draws)
    cdf = np.where(ordered < 0, 0.5 * np.exp(ordered / 2.0), 1 - 0.5 * np.exp(-ordered / 2.0))
    grid = np.arange(1, len(ordered) + 1) / len(ordered)
    assert max(np.abs(grid - cdf).max(), np.abs(grid - 1 / len(ordered) - cdf).max()) < 0.004
    again = LaplaceNoise(LaplaceNoise.Options()).sample((5,), 2.0, SecretStream.for_testing(5))
    assert torch.equal(again, torch.from_numpy(draws[:5]))  # a function of the stream alone


def test_pure_dp_composes_amplified_laplace_releases_and_bounds_pld():
    event = PrivacyEvent("laplace", noise_multiplier=2.0, sample_rate=0.01, steps=500)
    pure = PureDPAccountant(PureDPAccountant.Options()).epsilon([event], 1e-5)
    assert pure == pytest.approx(500 * math.log1p(0.01 * math.expm1(0.5)))
    pld = PLDAccountant(PLDAccountant.Options()).epsilon([event], 1e-5)
    assert 0 < pld <= pure  # PLD is tight at δ > 0; basic composition holds at δ = 0
    gaussian = PrivacyEvent("gaussian", 1.0, 0.01, 10)
    for accountant, refused in ((PureDPAccountant, gaussian), (RDPAccountant, event), (PRVAccountant, event)):
        with pytest.raises(BadInput, match="cannot compose"):
            accountant(accountant.Options()).epsilon([refused], 1e-5)


def test_dp_zo_releases_the_unnormalised_difference_and_steps_like_dpzero():
    check_estimator(DPZOLaplace)
    values = []
    for estimator in (DPZero(SmoothingOptions(smoothing=1e-2)), DPZOLaplace(SmoothingOptions(smoothing=1e-2))):
        problem = Quadratic()
        params, losses = problem.params, problem.losses
        measured = estimator.per_example(params, losses, seed=8)
        estimator.update(params, 8, torch.zeros(1, dtype=torch.float64), UpdateContext(1, 0.0, 0.0))
        values.append(measured.values)
    torch.testing.assert_close(values[1], values[0] * 2e-2)  # f(θ+λu) − f(θ−λu) = 2λ·d


def test_dp_zo_is_released_with_laplace_noise_at_the_clip_bound():
    estimator = DPZOLaplace(SmoothingOptions())
    clipper = ScalarClipper(BoundOptions(bound=0.05))
    with pytest.raises(BadInput, match="needs laplace noise"):
        PrivateRelease(clipper, GaussianNoise(GaussianNoise.Options()), 1.0, 0.1, estimator, 4.0, SecretStream(),
                       PrivacyLedger(1e-5))
    ledger = PrivacyLedger(1e-5)
    release = PrivateRelease(clipper, LaplaceNoise(LaplaceNoise.Options()), 3.0, 0.1, estimator, 4.0,
                             SecretStream(), ledger)
    assert release.scale == pytest.approx(3.0 * 0.05)  # σ × L1 sensitivity C of one clipped value
    problem = Quadratic()
    release.privatize(estimator.per_example(problem.params, problem.losses, seed=1))
    assert ledger.events == [PrivacyEvent("laplace", 3.0, 0.1, 1)]


LAPLACE_RUN = ["--set", 'estimator={name = "dp_zo_laplace", smoothing = 1e-3}', "--set", "clipper.bound=0.004",
               "--set", 'noise={name = "laplace"}', "--set", "privacy.accountant=pld",
               "--set", 'privacy.report=["pure", "pld"]', "--set", "train.steps=60", "--set", "train.eval_every=0"]


def test_a_dp_zo_run_reports_pure_and_pld_epsilon(toy_recipe, tmp_path):
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), "--json", *LAPLACE_RUN])
    assert result.exit_code == 0, result.output
    spent = json.loads(result.stdout.strip().splitlines()[-1])["privacy"]["epsilon"]
    assert spent["pld"] <= 4.0 + 1e-6 and spent["pld"] <= spent["pure"]  # calibrated with PLD for ε = 4
    ledger = json.loads((tmp_path / "run" / "privacy_ledger.json").read_text())
    assert [e["mechanism"] for e in ledger["events"]] == ["laplace"] and ledger["events"][0]["steps"] == 60


@pytest.mark.parametrize("override, fragment", [
    (["--set", 'privacy.report=["rdp"]'], "accountant 'rdp' cannot compose laplace"),
    (["--set", 'noise={name = "gaussian"}'], "needs laplace noise")])
def test_mismatched_noise_and_accountants_are_refused_in_one_line(toy_recipe, tmp_path, override, fragment):
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), *LAPLACE_RUN, *override])
    assert result.exit_code == 2 and fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
