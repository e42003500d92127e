"""The exact discrete Gaussian: its pmf, its grid and sensitivity, its accounting, and the recipe checks."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
import torch
from typer.testing import CliRunner

from zofw.cli import app
from zofw.errors import BadInput
from zofw.privacy.discrete_gaussian import discrete_gaussian
from zofw.privacy.ledger import PrivacyEvent, PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.estimator import PerExample
from zofw_privacy.accountants import PLDAccountant, PRVAccountant, RDPAccountant
from zofw_zo.clippers import BoundOptions, L2Clipper, ScalarClipper
from zofw_zo.estimators import DPZero, DPZeroMulti, MultiDirectionOptions, SmoothingOptions
from zofw_zo.noise import DiscreteGaussianNoise, DiscreteGaussianOptions


def test_samples_follow_the_discrete_gaussian_pmf():
    """Chi-square goodness of fit over the integers within 4σ (tails pooled), 20 000 exact draws."""
    sigma = 3.0
    source = SecretStream.for_testing(11)
    draws = [discrete_gaussian(Fraction(sigma**2), source) for _ in range(20_000)]
    support = range(-12, 13)
    weights = {x: math.exp(-x * x / (2 * sigma**2)) for x in range(-200, 201)}
    norm = sum(weights.values())
    expected = {x: 20_000 * weights[x] / norm for x in support}
    tail = 20_000 - sum(expected.values())
    observed = {x: draws.count(x) for x in support}
    outside = sum(1 for d in draws if abs(d) > 12)
    chi2 = sum((observed[x] - expected[x]) ** 2 / expected[x] for x in support) + (outside - tail) ** 2 / tail
    assert chi2 < 55.5  # 25 degrees of freedom: P[χ² > 55.5] ≈ 0.0005
    again = SecretStream.for_testing(11)
    assert [discrete_gaussian(Fraction(sigma**2), again) for _ in range(20)] == draws[:20]  # the stream alone decides


def release(ledger=None, grid=64, source=None):
    return PrivateRelease(ScalarClipper(BoundOptions(bound=2.0)), DiscreteGaussianNoise(DiscreteGaussianOptions(grid=grid)),
                          1.5, 0.1, DPZero(SmoothingOptions()), 1.0, source or SecretStream(), ledger or PrivacyLedger(1e-5))


@pytest.mark.parametrize("hostile", [1e6, float("nan"), -float("inf")])
def test_one_example_moves_the_release_by_at_most_its_grid_sensitivity(hostile):
    values = torch.randn(30, 1, dtype=torch.float64) * 3
    outputs = []
    for rows in (values, torch.cat([values, torch.tensor([[hostile]], dtype=torch.float64)])):
        r = release(source=SecretStream.for_testing(4))  # the same noise for both neighbours
        outputs.append(float(r.privatize(PerExample(values=rows)).coefficients[0]))
    step = 2.0 / 64
    moved = abs(outputs[1] - outputs[0])
    assert moved <= (64 + 1) * step + 1e-9  # C plus one rounding step, in grid units: the ledger's Δ
    assert abs(outputs[0] / step - round(outputs[0] / step)) < 1e-9  # released on the grid


def test_the_ledger_records_the_grid_sensitivity_and_pld_accounts_it_exactly():
    ledger = PrivacyLedger(1e-5)
    r = release(ledger)
    r.privatize(PerExample(values=torch.zeros(4, 1, dtype=torch.float64)))
    assert ledger.events == [PrivacyEvent("discrete_gaussian", 1.5, 0.1, 1, sensitivity=65)]
    event = PrivacyEvent("discrete_gaussian", 1.0, 0.01, 1000, sensitivity=1025)
    discrete = PLDAccountant(PLDAccountant.Options()).epsilon([event], 1e-5)
    continuous = PLDAccountant(PLDAccountant.Options()).epsilon([PrivacyEvent("gaussian", 1.0, 0.01, 1000)], 1e-5)
    assert continuous <= discrete <= 1.05 * continuous  # the same privacy, up to the grid and discretisation
    for accountant in (RDPAccountant, PRVAccountant):
        with pytest.raises(BadInput, match="cannot compose"):
            accountant(accountant.Options()).epsilon([event], 1e-5)


def test_more_than_one_released_value_is_refused():
    with pytest.raises(BadInput, match="at most 1 value"):
        PrivateRelease(L2Clipper(BoundOptions(bound=1.0)), DiscreteGaussianNoise(DiscreteGaussianOptions()), 1.0, 0.1,
                       DPZeroMulti(MultiDirectionOptions(directions=4)), 1.0, SecretStream(), PrivacyLedger(1e-5))


def test_a_run_with_exact_noise_is_calibrated_with_pld(toy_recipe, tmp_path):
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), "--json",
                                      "--set", 'noise={name = "discrete_gaussian"}', "--set", "privacy.accountant=pld",
                                      "--set", 'privacy.report=["pld"]', "--set", "train.steps=40",
                                      "--set", "train.eval_every=0"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["privacy"]["epsilon"]["pld"] <= 4.0 + 1e-6
    ledger = json.loads((tmp_path / "run" / "privacy_ledger.json").read_text())
    assert ledger["events"][0]["mechanism"] == "discrete_gaussian" and ledger["events"][0]["sensitivity"] == 1025
