"""The CLI defects of issue 11, each with a test: help, pipes, slot names, did-you-mean, describe, recipes,
the result line, plots and loggers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zofw.catalog import builtin_recipes, describe_options, resolve_recipe
from zofw.cli import app, calibration_line

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_run_help_says_a_bare_run_runs_the_quickstart_and_shows_examples():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Default: the built-in quickstart" in text and "bare `zofw run` runs it" in text
    assert "default: runs/NAME-TIME" in text  # not eaten as markup
    assert "Examples:" in text and "zofw cp quickstart" in text


def test_a_closed_pipe_ends_quietly():
    # the reader goes away at once: every write after that meets EPIPE
    code = ("import sys, os; r, w = os.pipe(); os.close(r); os.dup2(w, 1); sys.argv = ['zofw', 'list'];"
            "from zofw.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "BrokenPipe" not in done.stderr and "run failed" not in done.stderr


@pytest.mark.parametrize("word", ["model", "models", "MODEL", "task", "estimator", "accountant", "privacy"])
def test_slots_by_singular_plural_and_recipe_table_names(word):
    result = invoke("list", word)
    assert result.exit_code == 0, result.output
    assert len([line for line in result.output.splitlines() if not line.startswith(" ")]) == 1


@pytest.mark.parametrize("args, hint", [
    (["list", "modle"], "did you mean 'model'?"),
    (["describe", "dpzer"], "did you mean 'dpzero'?"),
    (["list", "estimator", "dpzer"], "did you mean 'dpzero'?"),
    (["run", "quickstrat"], None),  # a file that does not exist: the loader's one line
    (["cp", "quikstart", "x.toml"], "did you mean 'quickstart'?"),
])
def test_unknown_names_get_a_suggestion_in_one_line(args, hint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    if hint:
        assert hint in lines[0]


def test_unknown_command_gets_a_suggestion():
    result = invoke("lst")
    assert result.exit_code == 2 and "Did you mean 'list'?" in result.output


def test_describe_shows_options_with_types_defaults_and_meaning():
    result = invoke("describe", "dpzero")
    assert result.exit_code == 0, result.output
    assert "smoothing: float (> 0) = 0.001" in result.output and "MeZO and DPZero use 1e-3" in result.output
    same = invoke("list", "estimators", "dpzero")
    assert same.output == result.output
    record = json.loads(invoke("describe", "clipper.scalar", "--json").stdout)
    bound = next(row for row in record["options"] if row["name"] == "bound")
    assert bound["default"] == "required" and bound["doc"].startswith("C")


def test_every_registered_component_can_be_described():
    from zofw.plugins import registries

    for slot, registry in registries().items():
        for entry in registry:
            for row in describe_options(entry.component):
                assert row["name"] and row["type"] and row["default"], (slot, entry.name, row)


def test_every_paper_recipe_ships_in_the_package_and_can_be_listed_copied_and_named(tmp_path):
    shipped = {path.name for path in (REPO / "recipes").glob("*.toml")}
    assert {f"{name}.toml" for name in builtin_recipes()} == shipped
    for name, path in builtin_recipes().items():
        assert path.read_text() == (REPO / "recipes" / f"{name}.toml").read_text()
    listed = invoke("recipes")
    assert listed.exit_code == 0 and all(name in listed.output for name in builtin_recipes())
    result = invoke("cp", "dpzero_opt2.7b_drop", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dpzero_opt2.7b_drop.toml").read_text() == builtin_recipes()["dpzero_opt2.7b_drop"].read_text()
    again = invoke("cp", "dpzero_opt2.7b_drop", tmp_path)
    assert again.exit_code == 2 and "not overwritten" in again.stderr
    assert resolve_recipe(Path("quickstart")) == builtin_recipes()["quickstart"]
    assert invoke("validate", "dpzero_roberta-large_sst2").exit_code == 0


def test_the_package_data_globs_cover_the_recipes_and_the_quickstart_data():
    text = (REPO / "pyproject.toml").read_text()
    assert '"recipes/*.toml"' in text and '"recipes/data/*/*"' in text


def test_the_result_line_names_the_calibrating_accountant_and_c_q_t():
    privacy = {"noise_multiplier": 0.758, "calibrated_with": "pld", "target_epsilon": 2.0, "clip_bound": 10.0,
               "sample_rate": 16 / 863, "sampling": "poisson", "steps": 300}
    line = calibration_line(privacy)
    assert line == "σ = 0.758 (calibrated with pld for ε = 2), C = 10, q = 0.01854 (poisson), T = 300"
    assert "as the recipe set it" in calibration_line(privacy | {"calibrated_with": None})


def test_the_result_line_in_a_real_run(toy_recipe, tmp_path):
    result = invoke("run", toy_recipe, "--out", tmp_path / "run", "--set", "train.steps=20")
    assert result.exit_code == 0, result.output
    assert "calibrated with rdp for ε = 4" in result.output and "T = 20" in result.output and "C = " in result.output


def test_plot_writes_readable_pngs_and_a_summary(toy_recipe, tmp_path):
    pytest.importorskip("matplotlib")
    run_dir = tmp_path / "run"
    assert invoke("run", toy_recipe, "--out", run_dir, "--set", "train.steps=20").exit_code == 0
    result = invoke("plot", run_dir)
    assert result.exit_code == 0, result.output
    for name in ("metrics.png", "epsilon.png"):
        data = (run_dir / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    summary = (run_dir / "plots" / "summary.md").read_text()
    assert "calibrated with rdp" in summary and "T = 20" in summary


@pytest.mark.parametrize("command", ["plot", "report"])
def test_plot_refuses_what_is_not_a_run_directory(command, tmp_path):
    result = invoke(command, tmp_path)
    assert result.exit_code == 2 and "no metrics.jsonl" in result.stderr


def test_loggers_send_only_what_metrics_jsonl_holds(tmp_path):
    from zofw.loggers import follow, scalars

    record = {"step": 5, "eval": {"accuracy": 70.0, "loss": 0.8}, "epsilon": 1.2, "projected_grad": [0.3]}
    assert scalars(record) == {"eval/accuracy": 70.0, "eval/loss": 0.8, "privacy/epsilon": 1.2,
                               "release/projected_grad_0": 0.3}
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(record) + "\n" + '{"step": 6, "epsilon"')  # the last line still being written
    assert [r["step"] for r in follow(path)] == [5]


def test_a_logger_whose_library_is_missing_or_unknown_is_one_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "eval": {"accuracy": 1.0}}\n')
    unknown = invoke("export", tmp_path, "--to", "tensorbord")
    assert unknown.exit_code == 2 and "did you mean 'tensorboard'?" in unknown.stderr
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        missing = invoke("export", tmp_path, "--to", "tensorboard")
        assert missing.exit_code == 2 and "pip install tensorboard" in missing.stderr
    else:
        sent = invoke("export", tmp_path, "--to", "tensorboard")
        assert sent.exit_code == 0 and "sent 1 records" in sent.output
        assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_an_unknown_component_name_in_a_recipe_gets_a_did_you_mean():
    from typer.testing import CliRunner

    from zofw.cli import app

    result = CliRunner().invoke(app, ["validate", "recipes/quickstart.toml", "--set", 'estimator.name="dpzer"'])
    assert result.exit_code == 2 and "did you mean 'dpzero'?" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_report_to_a_missing_logger_is_refused_before_the_run_writes(toy_recipe, tmp_path):
    import importlib.util

    from typer.testing import CliRunner

    from zofw.cli import app

    if importlib.util.find_spec("tensorboard") is not None:
        import pytest

        pytest.skip("tensorboard is installed here")
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "r"),
                                      "--set", 'train.report_to=["tensorboard"]'])
    assert result.exit_code == 2 and "train.report_to: tensorboard logging needs" in result.output
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_loggers_see_exactly_the_records_metrics_jsonl_holds(tmp_path):
    import json

    from zofw.rundir import MetricsLog

    class Seen:
        def __init__(self):
            self.records, self.closed = [], False

        def log(self, record):
            self.records.append(record)

        def close(self):
            self.closed = True

    seen = Seen()
    log = MetricsLog(tmp_path / "metrics.jsonl", [seen])
    log.write({"step": 1, "projected_grad": [0.5], "epsilon": 0.1})
    log.write({"step": 2, "train_loss": float("nan")})  # written as null: the loggers get the same
    log.close()
    written = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert seen.records == written and seen.closed
