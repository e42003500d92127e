"""`zofw privacy`: accountants side by side without training (compare, calibrate, a recipe, a run)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from zofw.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, ["privacy", *map(str, args)])


def last_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_compare_gives_the_published_numbers():
    record = last_json(invoke("compare", "--sampling-rate", 0.064, "--noise-multiplier", 1.0, "--steps", 1000,
                              "--delta", 1e-5, "--json"))
    assert record["epsilon"]["rdp"] == pytest.approx(16.06, abs=0.05)
    assert record["epsilon"]["pld"] == pytest.approx(14.68, abs=0.05)
    assert record["epsilon"]["prv"] == pytest.approx(14.69, abs=0.05)
    assert set(record["seconds"]) == set(record["epsilon"])


def analytic_gaussian_epsilon(sigma: float, delta: float) -> float:
    """Balle & Wang (2018): the exact ε of one Gaussian release with sensitivity 1 at δ (bisection)."""
    phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731

    def delta_of(eps: float) -> float:
        return phi(1 / (2 * sigma) - eps * sigma) - math.exp(eps) * phi(-1 / (2 * sigma) - eps * sigma)

    low, high = 0.0, 100.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if delta_of(middle) > delta else (low, middle)
    return high


def test_full_batch_matches_the_analytic_gaussian_mechanism():
    # q = 1, T = 4 releases at σ = 2 are one release at σ/√T = 1
    record = last_json(invoke("compare", "--sampling-rate", 1, "--noise-multiplier", 2.0, "--steps", 4,
                              "--delta", 1e-5, "--json"))["epsilon"]
    exact = analytic_gaussian_epsilon(1.0, 1e-5)
    assert record["pld"] == pytest.approx(exact, rel=0.01) and record["prv"] == pytest.approx(exact, rel=0.01)
    assert record["rdp"] >= exact


def test_calibrate_round_trips_through_compare():
    sigmas = last_json(invoke("calibrate", "--target-epsilon", 2.0, "--sampling-rate", 0.01, "--steps", 500,
                              "--accountants", "rdp,pld", "--json"))["noise_multiplier"]
    assert sigmas["rdp"] > sigmas["pld"]  # RDP needs more noise for the same ε
    for name, sigma in sigmas.items():
        spent = last_json(invoke("compare", "--sampling-rate", 0.01, "--noise-multiplier", sigma, "--steps", 500,
                                 "--accountants", name, "--json"))["epsilon"][name]
        assert spent == pytest.approx(2.0, rel=0.005) and spent <= 2.0 + 1e-9


def test_a_finished_run_is_re_accounted_from_its_ledger(toy_recipe, tmp_path):
    run = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), "--json",
                                   "--set", "train.steps=30", "--set", "train.eval_every=0"])
    reported = last_json(run)["privacy"]["epsilon"]
    again = last_json(invoke(tmp_path / "run", "--json"))["epsilon"]
    assert {name: again[name] for name in reported} == reported and "prv" in again  # and another accountant


def test_a_recipe_shows_its_planned_schedule(toy_recipe):
    record = last_json(invoke(toy_recipe, "--json"))
    assert record["epsilon"]["rdp"] == pytest.approx(4.0, rel=0.005)  # σ calibrated with rdp for ε = 4


@pytest.mark.parametrize("args, fragment", [
    (["compare", "--sampling-rate", 0, "--noise-multiplier", 1, "--steps", 10], "--sampling-rate"),
    (["compare", "--sampling-rate", 0.1, "--noise-multiplier", -1, "--steps", 10], "--noise-multiplier"),
    (["compare", "--sampling-rate", 0.1, "--noise-multiplier", 1, "--steps", 0], "--steps"),
    (["compare", "--sampling-rate", 0.1, "--noise-multiplier", 1, "--steps", 10, "--delta", 1], "--delta"),
    (["compare", "--sampling-rate", 0.1, "--noise-multiplier", 1, "--steps", 10, "--accountants", "pure"], "pure"),
    (["calibrate", "--sampling-rate", 0.1, "--steps", 10], "--target-epsilon"),
    (["no/such/place"], "not compare"),
])
def test_bad_parameters_exit_2_in_one_line(args, fragment):
    result = invoke(*args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr


def approximate_plugin():
    from zofw import hookimpl
    from zofw.slots.accountant import Accountant

    class GaussianDPApproximation(Accountant):
        """μ-GDP central-limit estimate: an approximation of ε."""

        name = "clt"
        upper_bound = False

        def epsilon(self, events, delta):
            return 0.5 * sum(e.steps for e in events) ** 0.5 * max(e.sample_rate for e in events) / min(
                e.noise_multiplier for e in events)

    class Plugin:
        @hookimpl
        def register_accountants(self, register):
            register(GaussianDPApproximation)

    return Plugin()


@pytest.fixture()
def with_approximation():
    from zofw.plugins import plugin_manager

    manager = plugin_manager()
    manager.register(approximate_plugin(), name="clt-test")
    yield
    manager.unregister(name="clt-test")


def test_an_approximation_is_shown_marked_but_never_calibrates(with_approximation, toy_recipe):
    record = last_json(invoke("compare", "--sampling-rate", 0.02, "--noise-multiplier", 0.93, "--steps", 150, "--json"))
    assert "clt" in record["epsilon"] and record["approximations"] == ["clt"]
    text = invoke("compare", "--sampling-rate", 0.02, "--noise-multiplier", 0.93, "--steps", 150).stdout
    assert "clt      ε ≈" in text and "pld      ε =" in text
    refused = invoke("calibrate", "--target-epsilon", 2, "--sampling-rate", 0.02, "--steps", 150, "--accountants", "clt")
    assert refused.exit_code == 2 and "not an upper bound" in refused.stderr
    run = CliRunner().invoke(app, ["validate", str(toy_recipe), "--set", "privacy.accountant=clt"])
    assert run.exit_code == 0  # the recipe is valid; its run refuses to calibrate with clt:
    planned = invoke(toy_recipe, "--set", "privacy.accountant=clt")
    assert planned.exit_code == 2 and "not an upper bound" in planned.stderr


def test_the_budget_guard_stops_before_the_step_that_would_overspend(toy_recipe, tmp_path):
    from zofw_privacy.accountants import RDPAccountant
    from zofw.privacy.ledger import PrivacyEvent

    capped = tmp_path / "capped.toml"  # σ given, not calibrated: 300 steps would overspend the cap
    capped.write_text(toy_recipe.read_text().replace("epsilon = 4.0", "noise_multiplier = 1.0\nmax_epsilon = 6.0"))
    args = ["run", str(capped), "--out", str(tmp_path / "run"), "--json", "--set", "train.eval_every=0"]
    result = CliRunner().invoke(app, args)
    record = last_json(result)
    steps = record["steps"]
    rdp = RDPAccountant(RDPAccountant.Options())
    q = record["privacy"]["sample_rate"]
    assert 0 < steps < 300 and "privacy budget" in record["stopped"]
    assert rdp.epsilon([PrivacyEvent("gaussian", 1.0, q, steps)], 1e-5) <= 6.0
    assert rdp.epsilon([PrivacyEvent("gaussian", 1.0, q, steps + 1)], 1e-5) > 6.0
    ledger = json.loads((tmp_path / "run" / "privacy_ledger.json").read_text())
    assert ledger["events"][0]["steps"] == steps and record["privacy"]["epsilon"]["rdp"] <= 6.0
