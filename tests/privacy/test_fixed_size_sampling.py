"""Fixed-size batches end to end: offered only with an accountant that models them, noised for the
replace-one sensitivity 2C, and recorded in the ledger as what they are."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from zofw.cli import app
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.sampling import Sampling
from zofw.slots.estimator import PerExample
from zofw_zo.clippers import BoundOptions, ScalarClipper
from zofw_zo.estimators import DPZero, SmoothingOptions
from zofw_zo.noise import GaussianNoise

FIXED = ["--set", 'train.sampling="fixed_size"', "--set", "train.steps=30"]


def test_a_fixed_size_run_with_rdp_records_scheme_relation_and_n(toy_recipe, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--json", "--out", str(out), *FIXED,
                                      "--set", 'privacy.report=["rdp"]'])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])["privacy"]
    assert record["sampling"] == "fixed_size" and record["neighbouring"] == "replace-one"
    assert record["epsilon"]["rdp"] <= 4.0
    (event,) = PrivacyLedger.from_json((out / "privacy_ledger.json").read_text()).events
    assert (event.sampling, event.neighbouring, event.steps, event.dimension) == ("fixed_size", "replace-one", 30, 1)
    assert event.dataset_size == round(40 / event.sample_rate)


def test_fixed_size_batches_with_an_accountant_that_assumes_poisson_are_refused(toy_recipe, tmp_path):
    for key in ("privacy.accountant=\"pld\"", "privacy.report=[\"rdp\", \"prv\"]"):
        result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), *FIXED,
                                          "--set", key])
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "does not model fixed_size sampling" in lines[0]
        assert not (tmp_path / "run").exists()


def test_replacing_one_example_moves_the_sum_by_at_most_2c_and_the_noise_follows():
    clipper, noise, estimator = ScalarClipper(BoundOptions(bound=1.5)), GaussianNoise(GaussianNoise.Options()), \
        DPZero(SmoothingOptions())

    def release(sampling: Sampling) -> PrivateRelease:
        return PrivateRelease(clipper, noise, 0.9, sampling, estimator, 8.0, SecretStream(), PrivacyLedger(1e-5))

    fixed, poisson = release(Sampling.of("fixed_size", 8, 100)), release(Sampling.of("poisson", 8, 100))
    assert fixed.scale == 2 * poisson.scale == 2 * 0.9 * 1.5
    batch = torch.randn(8, 1, dtype=torch.float64) * 5
    worst = 0.0
    for replacement in (torch.tensor([[1e9]]), torch.tensor([[-1e9]]), torch.tensor([[float("nan")]])):
        for row in range(8):
            neighbour = batch.clone()
            neighbour[row] = replacement
            moved = (fixed.clipped_sum(PerExample(neighbour)) - fixed.clipped_sum(PerExample(batch))).abs().item()
            worst = max(worst, moved)
    assert worst <= 2 * 1.5 + 1e-12 and worst > 1.5  # the bound is used: more than C, at most 2C


def test_the_run_directory_view_shows_only_accountants_that_model_the_ledger(toy_recipe, tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(out), *FIXED,
                                    "--set", 'privacy.report=["rdp"]']).exit_code == 0
    shown = CliRunner().invoke(app, ["privacy", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    assert set(json.loads(shown.stdout.strip().splitlines()[-1])["epsilon"]) == {"rdp"}
    asked = CliRunner().invoke(app, ["privacy", str(out), "--accountants", "rdp,pld"])
    assert asked.exit_code == 2 and asked.output.strip().startswith("error: accountant 'pld' cannot compose")
