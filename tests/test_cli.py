"""The CLI through Typer's runner: exit codes, one-line errors, JSON output, run directories."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from zofw.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_run_json_reports_metrics_privacy_and_run_dir(toy_recipe, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", toy_recipe, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["steps"] == 300
    assert record["metrics"]["accuracy"] > record["metrics_before"]["accuracy"] + 10
    assert set(record["privacy"]["epsilon"]) == {"rdp", "pld"}
    assert record["privacy"]["epsilon"]["rdp"] <= 4.0 + 1e-6  # σ was calibrated with rdp for ε = 4
    assert record["privacy"]["epsilon"]["pld"] < record["privacy"]["epsilon"]["rdp"]
    assert record["run_dir"] == str(out)
    for name in ("recipe.toml", "metrics.jsonl", "privacy_ledger.json", "result.json"):
        assert (out / name).is_file(), name


def test_run_refuses_a_non_empty_run_directory_and_keeps_it(toy_recipe, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = invoke("run", toy_recipe, "--out", out)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (out / "keep.txt").read_text() == "precious" and len(list(out.iterdir())) == 1


def test_resolved_recipe_reruns_to_the_same_validation(toy_recipe, tmp_path):
    out = tmp_path / "run"
    assert invoke("run", toy_recipe, "--out", out, "--set", "train.steps=2").exit_code == 0
    assert invoke("validate", out / "recipe.toml").exit_code == 0


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_component_option_names_the_full_key_path(toy_recipe):
    one_line_error(invoke("validate", toy_recipe, "--set", "estimator.smoothng=0.1"),
                   "estimator.smoothng", "unknown key")


def test_unknown_top_level_key(toy_recipe):
    one_line_error(invoke("validate", toy_recipe, "--set", "trian.steps=3"), "trian", "unknown key")


def test_wrong_type_is_typed_by_the_schema(toy_recipe):
    one_line_error(invoke("validate", toy_recipe, "--set", "train.steps=many"), "train.steps", "'many'")
    assert invoke("validate", toy_recipe, "--set", "train.steps=12").exit_code == 0


def test_missing_recipe_file(tmp_path):
    one_line_error(invoke("validate", tmp_path / "nope.toml"), "nope.toml", "no such file")


def test_invalid_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nsteps = 3")
    one_line_error(invoke("run", bad), "invalid TOML")


def test_unknown_component_name_lists_the_available_ones(toy_recipe):
    one_line_error(invoke("validate", toy_recipe, "--set", "estimator.name=magic"),
                   "estimator.name", "magic", "dpzero")


def test_private_estimator_needs_privacy_tables(toy_recipe, tmp_path):
    text = toy_recipe.read_text().split("[privacy]")[0] + "[train]\nsteps = 3\nexpected_batch = 4\nlr = 0.1\n"
    text = text.replace('[clipper]\nname = "scalar"\nbound = 2.0\n', "")
    bare = tmp_path / "bare.toml"
    bare.write_text(text)
    one_line_error(invoke("validate", bare), "private", "[privacy]")


def test_malformed_override(toy_recipe):
    one_line_error(invoke("validate", toy_recipe, "--set", "train.steps"), "KEY=VALUE")


def test_run_failure_exits_1_with_one_line(toy_recipe, tmp_path, monkeypatch):
    from conftest import ToyModel

    def broken(self, batch, shape):
        raise RuntimeError("device on fire")

    monkeypatch.setattr(ToyModel, "losses", broken)
    result = invoke("run", toy_recipe, "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["error: run failed: RuntimeError: device on fire"]


def test_list_json_has_every_slot_and_first_party_components():
    result = invoke("list", "--json")
    assert result.exit_code == 0
    table = json.loads(result.stdout)
    assert set(table) == {"estimators", "clippers", "schedules", "noise", "accountants", "models", "tasks"}
    estimators = {row["name"]: row for row in table["estimators"]}
    assert {"two_point", "dpzero", "dpgd0"} <= set(estimators)
    assert estimators["dpzero"]["plugin"] == "zo" and estimators["dpzero"]["summary"]
    assert {row["name"] for row in table["accountants"]} >= {"rdp", "pld", "prv"}


def test_list_one_slot_and_unknown_slot():
    result = invoke("list", "accountants", "--json")
    assert list(json.loads(result.stdout)) == ["accountants"]
    one_line_error(invoke("list", "widgets"), "unknown slot")


def test_plugins_lists_first_party_plugins_with_their_distribution():
    rows = {row["name"]: row for row in json.loads(invoke("plugins", "--json").stdout)}
    assert {"zo", "privacy", "hf", "tasks"} <= set(rows)
    assert rows["zo"]["distribution"].startswith("zofw ")


def test_version():
    assert invoke("--version").stdout.startswith("zofw ")


def test_missing_data_file_and_model_directory_name_their_keys(tmp_path):
    recipe = "recipes/dpzero_opt2.7b_drop.toml"
    one_line_error(invoke("validate", recipe, "--set", f"task.path={tmp_path / 'nope.json'}"),
                   "task.path", "nope.json")
    one_line_error(invoke("run", recipe, "--set", f"model.path={tmp_path / 'no-model'}", "--out", tmp_path / "r"),
                   "model.path", "no-model")
    assert not (tmp_path / "r").exists()  # bad input is refused before anything is written


def test_default_run_directories_never_collide(tmp_path, monkeypatch):
    from zofw.cli import fresh_run_dir

    monkeypatch.chdir(tmp_path)
    first = fresh_run_dir("quickstart")  # created at once (mkdir is atomic): another process cannot take it
    assert first.is_dir() and not any(first.iterdir())
    assert fresh_run_dir("quickstart") != first


def test_dpgd0_runs_and_is_accounted_like_dpzero(toy_recipe, tmp_path):
    result = invoke("run", toy_recipe, "--json", "--out", tmp_path / "r", "--set", "estimator.name=dpgd0",
                    "--set", "train.steps=50")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["privacy"]["epsilon"]["rdp"] <= 4.0 + 1e-6


def test_non_private_two_point_reports_no_epsilon_and_logs_the_training_loss(toy_recipe, tmp_path):
    text = toy_recipe.read_text()
    text = text.replace('name = "dpzero"', 'name = "two_point"')
    text = text[:text.index("[clipper]")] + text[text.index("[train]"):]
    recipe = tmp_path / "mezo.toml"
    recipe.write_text(text)
    result = invoke("run", recipe, "--json", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["privacy"]["private"] is False and record["privacy"]["epsilon"] == {}
    assert record["metrics"]["accuracy"] > record["metrics_before"]["accuracy"]
    assert not (tmp_path / "r" / "privacy_ledger.json").exists()
    assert "train_loss" in (tmp_path / "r" / "metrics.jsonl").read_text()
