"""The OPT/DROP recipe, shrunk on the command line to a tiny local OPT and the real DROP sample."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from zofw.cli import app


def test_dpzero_recipe_shrunk_to_tiny_opt_runs_20_steps_and_reports_drop_f1(tiny_opt, shared_data, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", "recipes/dpzero_opt2.7b_drop.toml", "--json", "--out", str(out),
        "--set", f"model.path={tiny_opt}",
        "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}",
        "--set", "model.device=cpu", "--set", "model.dtype=float32", "--set", "model.max_length=256",
        "--set", f"task.path={shared_data / 'drop' / 'drop_train_sample.json'}",
        "--set", "task.n_train=64", "--set", "task.n_eval=8", "--set", "task.held_out_public=true",
        "--set", "train.steps=20", "--set", "train.eval_every=0",
        "--set", "privacy.accountant=rdp",
    ])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["steps"] == 20 and record["main_metric"] == "f1"
    assert 0.0 <= record["metrics"]["f1"] <= 100.0 and "f1" in record["metrics_before"]
    assert set(record["privacy"]["epsilon"]) == {"rdp", "pld", "prv"}
    assert record["privacy"]["epsilon"]["rdp"] <= 2.0 + 1e-6
    ledger = json.loads((out / "privacy_ledger.json").read_text())
    assert sum(event["steps"] for event in ledger["events"]) == 20
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert not any("train_loss" in line for line in lines)  # private runs never release the training loss


def test_roberta_sst2_recipe_shrunk_to_tiny_roberta_runs_and_reports_accuracy(tiny_roberta, shared_data, tmp_path):
    result = CliRunner().invoke(app, [
        "run", "recipes/dpzero_roberta-large_sst2.toml", "--json", "--out", str(tmp_path / "run"),
        "--set", f"model.path={tiny_roberta}", "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'roberta'}",
        "--set", "model.device=cpu", "--set", f"task.path={shared_data / 'sst2' / 'train.tsv'}",
        "--set", f"task.eval_path={shared_data / 'sst2' / 'dev.tsv'}", "--set", "task.n_eval=64",
        "--set", "train.steps=20", "--set", "train.eval_every=0", "--set", "privacy.accountant=rdp",
    ])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["main_metric"] == "accuracy" and 0 <= record["metrics"]["accuracy"] <= 100
    assert record["privacy"]["epsilon"]["rdp"] <= 2.0 + 1e-6
