"""An example plugin distribution, installed for real, registers an estimator that a recipe uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "zofw-forward-difference"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """pip-install the example into its own folder (dist-info with its entry point), not the env."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLE)], check=True)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}


def zofw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zofw.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_listed_under_its_plugin_name(installed):
    result = zofw(installed, "list", "estimators", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["estimators"]}
    assert rows["forward_difference"]["plugin"] == "forward_difference"
    assert "One-sided" in rows["forward_difference"]["summary"]


def test_runs_in_a_recipe(installed, tiny_opt, shared_data, tmp_path):
    result = zofw(installed, "run", "recipes/dpzero_opt2.7b_drop.toml", "--json", "--out", str(tmp_path / "run"),
                  "--set", "estimator=" + '{name = "forward_difference", smoothing = 1e-3}',
                  "--set", f"model.path={tiny_opt}", "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}",
                  "--set", "model.device=cpu", "--set", "model.dtype=float32", "--set", "model.max_length=256",
                  "--set", f"task.path={shared_data / 'drop' / 'drop_train_sample.json'}",
                  "--set", "task.n_train=32", "--set", "task.n_eval=4", "--set", "task.held_out_public=true", "--set", "train.steps=5",
                  "--set", "train.eval_every=0", "--set", "privacy.accountant=rdp",
                  "--set", 'privacy.report=["rdp"]')
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["steps"] == 5 and record["privacy"]["epsilon"]["rdp"] <= 2.0 + 1e-6
    assert "forward_difference" in (tmp_path / "run" / "recipe.toml").read_text()
