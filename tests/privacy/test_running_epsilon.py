"""ε so far at every log record: each accountant's curve agrees with its own ε, the loop shows it at
every record, and a ledger that left the plan is accounted exactly."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zofw.cli import app
from zofw.plugins import registries
from zofw.privacy.ledger import PrivacyEvent, PrivacyLedger
from zofw.privacy.running import RunningEpsilon, log_marks


def accountant(name: str):
    entry = registries()["accountants"].get(name)
    return entry.component(entry.component.Options())


EVENT = PrivacyEvent("gaussian", 1.0, 0.008, 1)
MARKS = log_marks(3000, 60)


@pytest.mark.parametrize("name,tolerance", [("rdp", 1e-9), ("pld", 2e-3)])
def test_the_incremental_curve_agrees_with_the_accountants_own_epsilon(name, tolerance):
    chosen = accountant(name)
    curve = chosen.curve(EVENT, MARKS, 1e-5)
    assert all(a < b for a, b in zip(curve, curve[1:]))
    for mark, value in list(zip(MARKS, curve))[::10] + [(MARKS[-1], curve[-1])]:
        exact = chosen.epsilon([PrivacyEvent("gaussian", 1.0, 0.008, mark)], 1e-5)
        assert value == pytest.approx(exact, rel=tolerance)
        assert value >= exact * (1 - 1e-9) or name == "pld"  # PLD: both pessimistic, composed differently


def test_the_prv_curve_never_reports_less_than_prv_at_the_same_step():
    prv = accountant("prv")
    marks = [10, 100, 700, 3000]
    curve = prv.curve(EVENT, marks, 1e-5)
    assert curve[-1] == pytest.approx(prv.epsilon([PrivacyEvent("gaussian", 1.0, 0.008, 3000)], 1e-5), rel=1e-6)
    for mark, value in zip(marks, curve):
        assert value >= prv.epsilon([PrivacyEvent("gaussian", 1.0, 0.008, mark)], 1e-5) - 1e-9


def test_a_ledger_that_left_the_plan_is_accounted_exactly():
    rdp = accountant("rdp")
    running = RunningEpsilon(rdp, EVENT, 1e-5, [10, 20])
    planned = PrivacyLedger(1e-5, [PrivacyEvent("gaussian", 1.0, 0.008, 20)])
    assert running.after(planned) == running.at[20]
    other = PrivacyLedger(1e-5, [PrivacyEvent("gaussian", 1.0, 0.008, 10), PrivacyEvent("gaussian", 0.5, 0.008, 10)])
    assert running.after(other) == rdp.epsilon(other.events, 1e-5) > running.at[20]


def test_every_log_record_of_a_private_run_shows_epsilon_so_far(toy_recipe, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--json", "--out", str(out), "--set", "train.steps=40",
                                      "--set", "train.log_every=5", "--set", "privacy.accountant=\"pld\""])
    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.strip().splitlines()[-1])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "eval" not in r]
    assert [r["step"] for r in steps] == list(range(5, 41, 5))
    spent = [r["epsilon"] for r in steps]
    assert all(a < b for a, b in zip(spent, spent[1:]))
    assert spent[-1] == pytest.approx(final["privacy"]["epsilon"]["pld"], rel=2e-3)  # the ledger's own ε
    assert records[-1]["epsilon"] == spent[-1]  # the closing record carries it too
