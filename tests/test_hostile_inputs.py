"""Hostile and broken inputs: each is answered with one line naming the key or file, exit 2, within 5 s,
before any model loads, and nothing already written is lost. docs/reliability.md lists every case.

Also: strict JSON in the run directory, a clear stop when training diverges, consistent permissions,
plugins that fail, provenance, and property-based tests of the recipe parser and the overrides.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from zofw import cli, provenance
from zofw.cli import app
from zofw.config import MAX_DEPTH, Recipe, apply_override, check_values, load_recipe, read_toml
from zofw.errors import BadInput, RunFailed
from zofw.rundir import MetricsLog, check_finite_parameters, file_mode, write_json

REPO = Path(__file__).resolve().parents[1]
OPT = REPO / "recipes" / "dpzero_opt2.7b_drop.toml"
Q_RECIPE = REPO / "recipes" / "quickstart.toml"
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TOY_TWO_POINT = "\n".join(["seed = 3", '[model]\nname = "toy_linear"', '[task]\nname = "toy"',
                           '[estimator]\nname = "two_point"\nsmoothing = 1e-3',
                           "[train]\nsteps = 40\nexpected_batch = 40\nlr = 0.05\n"])


def invoke(*args):
    started = time.perf_counter()
    result = CliRunner().invoke(app, [str(a) for a in args])
    result.seconds = time.perf_counter() - started
    return result


def refused(result, *fragments: str) -> str:
    """Exit 2, one line on stderr holding every fragment, no traceback, in under 5 s."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.seconds < 5, f"took {result.seconds:.1f} s to refuse"
    return lines[0]


def strict_lines(path: Path) -> list:
    """Every line of a JSON-lines file, parsed as strict JSON (NaN or Infinity tokens fail)."""
    def no_constants(token):
        raise AssertionError(f"{path.name} holds {token}")
    return [json.loads(line, parse_constant=no_constants) for line in path.read_text().splitlines()]


@pytest.fixture
def never_loads(monkeypatch):
    """Any model load fails the test: bad input must be refused before it."""
    from conftest import ToyModel

    def load(self, kind):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(ToyModel, "load", load)
    try:
        from zofw_hf.common import HFAdapter
        monkeypatch.setattr(HFAdapter, "load", load)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty hub cache and an endpoint that refuses connections; offline flags cleared (restored after)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    for name in provenance.OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(provenance, "_reachable", {})
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)
    return tmp_path / "hub-cache"


def fake_model_dir(root: Path, *, config: str | None = '{"model_type": "opt"}', weights: bool = True,
                   tokenizer: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (root / "config.json").write_text(config)
    if weights:
        (root / "model.safetensors").write_bytes(b"\0" * 16)
    if tokenizer:
        (root / "vocab.json").write_text("{}")
        (root / "merges.txt").write_text("")
    return root


# --- item: non-finite values --------------------------------------------------------------------------


@pytest.mark.parametrize("line, key", [
    ("epsilon = inf", "privacy.epsilon"), ("epsilon = nan", "privacy.epsilon"),
    ("max_epsilon = inf", "privacy.max_epsilon"), ("delta = nan", "privacy.delta"),
])
def test_non_finite_privacy_values_in_the_recipe_file(toy_recipe, tmp_path, line, key):
    text = toy_recipe.read_text().replace("epsilon = 4.0", line if "epsilon =" in line and "max" not in line
                                          else f"epsilon = 4.0\n{line}")
    if line.startswith("delta"):
        text = text.replace("delta = 1e-5\n", "")
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    refused(invoke("validate", bad), key, "finite")


@pytest.mark.parametrize("assignment, key", [
    ("privacy.epsilon=inf", "privacy.epsilon"), ("train.lr=inf", "train.lr"), ("train.lr=nan", "train.lr"),
    ("train.lr=-inf", "train.lr"), ("train.expected_batch=Infinity", "train.expected_batch"),
    ("train.weight_decay=nan", "train.weight_decay"), ("clipper.bound=inf", "clipper.bound"),
    ("estimator.smoothing=nan", "estimator.smoothing"), ("privacy.delta=nan", "privacy.delta"),
    ("clipper=" + '{name = "scalar", bound = inf}', "clipper.bound"),
    ("task.dims=nan", "task.dims"),
])
def test_non_finite_overrides(toy_recipe, assignment, key):
    refused(invoke("validate", toy_recipe, "--set", assignment), key)


def test_non_finite_values_in_a_component_table_of_the_file(toy_recipe, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(toy_recipe.read_text().replace("bound = 2.0", "bound = nan"))
    refused(invoke("validate", bad), "clipper.bound", "finite")


def test_epsilon_inf_never_runs(toy_recipe, tmp_path, never_loads):
    refused(invoke("run", toy_recipe, "--set", "privacy.epsilon=inf", "--out", tmp_path / "r"), "privacy.epsilon")
    assert not (tmp_path / "r").exists()


def test_run_files_are_strict_json(toy_recipe, tmp_path):
    out = tmp_path / "r"
    result = invoke("run", toy_recipe, "--out", out, "--json", "--set", "train.steps=30")
    assert result.exit_code == 0, result.output
    strict_lines(out / "metrics.jsonl")
    for name in ("result.json", "privacy_ledger.json", "provenance.json"):
        strict_lines(out / name) if name.endswith("jsonl") else json.loads(
            (out / name).read_text(), parse_constant=lambda token: pytest.fail(f"{name} holds {token}"))


def test_training_that_diverges_stops_with_one_line_and_strict_json(toy_plugin, tmp_path):
    recipe = tmp_path / "mezo.toml"
    recipe.write_text(TOY_TWO_POINT)
    out = tmp_path / "r"
    result = invoke("run", recipe, "--out", out, "--set", "train.lr=1e300", "--set", "train.log_every=1",
                    "--set", "train.eval_every=5")
    assert result.exit_code == 1, result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: run failed: training diverged"), line
    assert "not a finite number" in line or "hold nan or inf" in line, line
    records = strict_lines(out / "metrics.jsonl")  # written so far, all strict JSON
    # stopped at the first record after the weights went non-finite, not steps later
    assert [r["step"] for r in records if "eval" not in r][-1] <= 2
    assert not (out / "result.json").exists()


def test_metrics_log_writes_null_for_non_finite_and_stops_on_a_non_finite_eval_loss(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write({"step": 1, "train_loss": float("nan"), "projected_grad": [1.0, float("inf")]})
    with pytest.raises(RunFailed, match="training diverged.*step 7"):
        log.write({"step": 7, "eval": {"loss": float("inf"), "accuracy": 50.0}})
    with pytest.raises(RunFailed, match="before training"):
        log.write({"step": 0, "eval": {"loss": float("nan")}})
    log.close()
    first, second, third = strict_lines(tmp_path / "metrics.jsonl")
    assert first["train_loss"] is None and first["projected_grad"] == [1.0, None]
    assert first["nonfinite_keys"] == ["projected_grad[1]", "train_loss"]
    assert second["eval"] == {"loss": None, "accuracy": 50.0} and third["step"] == 0


def test_write_json_refuses_non_finite_values_by_key(tmp_path):
    with pytest.raises(RunFailed, match=r"result.json: metrics.loss not a finite number"):
        write_json(tmp_path / "result.json", {"metrics": {"loss": float("nan")}})
    assert not (tmp_path / "result.json").exists() and not list(tmp_path.iterdir())  # no temporary left
    write_json(tmp_path / "result.json", {"metrics": {"loss": 1.5}})
    assert json.loads((tmp_path / "result.json").read_text()) == {"metrics": {"loss": 1.5}}


def test_divergence_check_of_the_parameters():
    import torch

    check_finite_parameters([torch.ones(3), torch.zeros(2)], 5, 0.1)
    with pytest.raises(RunFailed, match="after step 5 .*train.lr = 1e\\+30"):
        check_finite_parameters([torch.ones(3), torch.tensor([1.0, float("nan")])], 5, 1e30)


# --- item: bad input that used to exit 1 --------------------------------------------------------------


@pytest.mark.parametrize("seed, fragment", [
    (str(2**64), "seed"), (str(10**30), "seed"), (str(2**63), "seed"), ("-1", "seed"), ("1.5", "seed"),
])
def test_seed_out_of_range(toy_recipe, seed, fragment):
    refused(invoke("validate", toy_recipe, "--set", f"seed={seed}"), fragment)


def test_seed_beyond_64_bits_in_the_file(toy_recipe, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(toy_recipe.read_text().replace("seed = 3", f"seed = {2**70}"))
    refused(invoke("validate", bad), "seed")


def test_integers_beyond_64_bits_anywhere(toy_recipe):
    refused(invoke("validate", toy_recipe, "--set", f"task.dims={10**25}"), "task.dims", "64 bits")


def test_largest_seed_runs(toy_recipe, tmp_path):
    result = invoke("run", toy_recipe, "--out", tmp_path / "r", "--set", f"seed={2**63 - 1}", "--set", "train.steps=2")
    assert result.exit_code == 0, result.output


def test_recipe_path_through_a_regular_file(toy_recipe):
    refused(invoke("validate", toy_recipe / "inner.toml"), str(toy_recipe), "is a file, not a directory")


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"\xff\xfe[train]"), "not UTF-8"),
    (lambda p: p.write_bytes(b"x" * ((1 << 20) + 1)), "larger than 1024 KiB"),
    (lambda p: p.write_text("a = " + "[" * 5000 + "]" * 5000), "nested too deeply"),
    (lambda p: p.write_text("a = " + "{b = " * 3000 + "1" + "}" * 3000), "nested too deeply"),
    (lambda p: p.write_text("[train\nsteps = 3"), "invalid TOML"),
    (lambda p: None, "no such file"),
])
def test_recipe_files_that_are_not_recipes(tmp_path, make, fragment):
    path = tmp_path / "recipe.toml"
    make(path)
    refused(invoke("validate", path), "recipe", fragment)


def test_a_device_is_not_read_as_a_recipe():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    refused(invoke("validate", "/dev/zero"), "/dev/zero", "not a regular file")


def test_a_byte_order_mark_is_tolerated(toy_recipe, tmp_path):
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + toy_recipe.read_bytes())
    assert invoke("validate", bom).exit_code == 0


def test_tables_nested_deeper_than_the_limit(toy_recipe, tmp_path):
    deep = ".".join(["a"] * (MAX_DEPTH + 5))
    refused(invoke("validate", toy_recipe, "--set", f"estimator.{deep}=1"), "nested deeper than")
    bad = tmp_path / "deep.toml"
    bad.write_text(toy_recipe.read_text().replace("smoothing = 1e-3", f"{deep} = 1"))
    refused(invoke("validate", bad), "nested deeper than")


def test_nul_characters_are_refused(toy_recipe, tmp_path):
    bad = tmp_path / "nul.toml"
    bad.write_text(toy_recipe.read_text().replace('name = "toy"', 'name = "toy"\npath = "a\\u0000b"'))
    refused(invoke("validate", bad), "task.path", "NUL")


# --- the model and tokenizer directories of a Hugging Face recipe --------------------------------------


def test_tokenizer_folder_without_tokenizer_files(tmp_path, shared_data, never_loads):
    model = fake_model_dir(tmp_path / "model", tokenizer=False)
    only_config = tmp_path / "tok"
    only_config.mkdir()
    (only_config / "tokenizer_config.json").write_text("{}")
    data = shared_data / "drop" / "drop_train_sample.json"
    for tokenizer in (only_config, model):
        result = invoke("run", OPT, "--set", f"model.path={model}", "--set", f"model.tokenizer={tokenizer}",
                        "--set", f"task.path={data}", "--set", "model.device=cpu", "--out", tmp_path / "r")
        refused(result, "model.tokenizer", "no tokenizer files")
    assert not (tmp_path / "r").exists()


def test_model_folder_without_tokenizer_files_and_no_tokenizer_key(tmp_path):
    model = fake_model_dir(tmp_path / "model", tokenizer=False)
    recipe = tmp_path / "r.toml"
    recipe.write_text(OPT.read_text())  # names no model.tokenizer: the tokenizer is read from model.path
    refused(invoke("validate", recipe, "--set", f"model.path={model}"),
            "model.path", "no tokenizer files", "model.tokenizer is not set")


@pytest.mark.parametrize("kind, fragment", [
    ("no-config", "has no config.json"),
    ("no-weights", "has no weights"),
    ("bad-config", "config.json: invalid JSON"),
    ("deep-config", "nested too deeply"),
    ("list-config", "not an object"),
])
def test_model_folders_that_cannot_load(tmp_path, kind, fragment):
    config = {"no-config": None, "bad-config": "{not json", "deep-config": "[" * 100_000 + "]" * 100_000,
              "list-config": "[1, 2]"}.get(kind, '{"model_type": "opt"}')
    model = fake_model_dir(tmp_path / "model", config=config, weights=kind != "no-weights")
    refused(invoke("validate", OPT, "--set", f"model.path={model}"), "model.path", fragment)


def test_random_init_needs_no_weights(tmp_path):
    model = fake_model_dir(tmp_path / "model", weights=False)
    assert invoke("validate", OPT, "--set", f"model.path={model}", "--set", "model.random_init=true").exit_code == 0


def test_a_deep_tokenizer_config_is_refused(tmp_path):
    model = fake_model_dir(tmp_path / "model")
    (model / "tokenizer_config.json").write_text('{"a": ' + "[" * 200 + "]" * 200 + "}")
    refused(invoke("validate", OPT, "--set", f"model.path={model}"), "model.tokenizer" if False else "model.path",
            "tokenizer_config.json", "nested deeper than")


# --- offline hub ids ----------------------------------------------------------------------------------


def test_offline_hub_ids_are_refused_at_once_naming_the_keys(offline, tmp_path, never_loads):
    result = invoke("run", OPT, "--set", "model.device=cpu", "--out", tmp_path / "r")
    line = refused(result, "model.path = 'facebook/opt-2.7b'", "task.dataset = 'ucinlp/drop'", "unreachable",
                   "local directory", "task.path")
    assert "model.tokenizer" not in line  # a key this recipe never set
    assert result.seconds < 5 and not (tmp_path / "r").exists()


def test_offline_mode_set_by_the_user(offline, monkeypatch, tmp_path, shared_data):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = shared_data / "drop" / "drop_train_sample.json"
    result = invoke("run", OPT, "--set", f"task.path={data}", "--out", tmp_path / "r")
    line = refused(result, "model.path = 'facebook/opt-2.7b'", "offline mode is set")
    assert "task.dataset" not in line  # task.path is local: the dataset id is not used


def test_a_cached_hub_id_goes_offline_instead_of_retrying(offline, monkeypatch):
    from zofw.assemble import build

    snapshot = offline / "models--facebook--opt-2.7b" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (offline / "models--facebook--opt-2.7b" / "refs").mkdir()
    (offline / "models--facebook--opt-2.7b" / "refs" / "main").write_text("abc123")
    (offline / "datasets--ucinlp--drop" / "snapshots" / "def").mkdir(parents=True)
    recipe = load_recipe(OPT)
    parts = build(recipe, str(OPT))
    assert provenance.offline_problem(parts) is None
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    assert provenance.hub_revision("facebook/opt-2.7b", "model") == "abc123"


def test_a_path_that_looks_like_a_path_is_not_taken_for_a_hub_id(offline, tmp_path):
    refused(invoke("run", OPT, "--set", "model.path=models/opt/2.7b", "--out", tmp_path / "r"),
            "model.path", "no such directory")


def test_validate_stays_offline_friendly(offline):
    assert invoke("validate", OPT).exit_code == 0  # hub ids are only checked by commands that load them


# --- plugins ------------------------------------------------------------------------------------------


def plugin_site(root: Path, modules: dict[str, str]) -> dict[str, str]:
    """A hand-made distribution with one entry point per module, on PYTHONPATH."""
    info = root / "hostile_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zofw]\n" + "".join(f"{m} = {m}_mod\n" for m in modules))
    for name, source in modules.items():
        (root / f"{name}_mod.py").write_text(source)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}


def zofw(env, *args):
    return subprocess.run([sys.executable, "-m", "zofw.cli", *map(str, args)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    return plugin_site(tmp_path_factory.mktemp("site"), {
        "noimport": "import a_module_that_is_not_installed\n",
        "raising": "from zofw import hookimpl\n\n@hookimpl\ndef register_estimators(register):\n"
                   "    raise RuntimeError('register exploded')\n",
        "misspelled": "from zofw import hookimpl\n\n@hookimpl\ndef register_estimatorz(register):\n    pass\n",
        "notacomponent": "from zofw import hookimpl\n\n@hookimpl\ndef register_estimators(register):\n"
                         "    register(dict)\n",
    })


def test_zofw_plugins_lists_broken_plugins_by_name(broken_site):
    result = zofw(broken_site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout.strip().splitlines()[-1])}
    assert "a_module_that_is_not_installed" in rows["noimport"]["error"]
    assert rows["noimport"]["distribution"] == "hostile-plugins 0.1"
    assert "register_estimators raised RuntimeError: register exploded" in rows["raising"]["error"]
    assert "register_estimatorz" in rows["misspelled"]["error"]
    assert "not a subclass" in rows["notacomponent"]["error"]
    assert rows["zo"]["error"] == "" and rows["zo"]["hooks"]


def test_other_commands_work_and_warn_once_per_broken_plugin(broken_site):
    result = zofw(broken_site, "validate", "recipes/quickstart.toml")
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 4 and all(w.startswith("warning: zofw plugin '") for w in warnings), warnings
    assert any("'noimport' (hostile-plugins 0.1) is skipped" in w for w in warnings)


def test_a_recipe_naming_a_missing_component_is_told_which_plugins_failed(broken_site):
    result = zofw(broken_site, "validate", "recipes/quickstart.toml", "--set", "estimator.name=fancy")
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert "estimator.name" in error and "'raising'" in error and "'noimport'" in error


def test_a_plugin_raising_in_its_register_hook_is_skipped_in_process(capsys):
    from zofw import hookimpl
    from zofw.plugins import plugin_info, plugin_manager, registries

    class Exploding:
        @hookimpl
        def register_estimators(self, register):
            from conftest import ToyTask
            register(ToyTask)  # a task, in the estimators slot: invalid too, but it raises first below
            raise ValueError("half-registered")

    pm = plugin_manager()
    pm.register(Exploding(), name="exploding-test-plugin")
    try:
        slots = registries()
        assert "toy" not in {entry.name for entry in slots["estimators"]}  # none of its components
        assert "dpzero" in {entry.name for entry in slots["estimators"]}
        rows = {row["name"]: row for row in plugin_info()}
        assert "exploding-test-plugin" in rows and rows["exploding-test-plugin"]["error"]
    finally:
        pm.unregister(name="exploding-test-plugin")
    assert "exploding-test-plugin" not in {row["name"] for row in plugin_info()}


# --- --debug ------------------------------------------------------------------------------------------


def test_debug_prints_the_traceback_not_nonetype(toy_recipe, monkeypatch):
    monkeypatch.delenv("ZOFW_DEBUG", raising=False)
    result = invoke("--debug", "validate", toy_recipe, "--set", "train.steps=many")
    assert result.exit_code == 2
    assert "NoneType: None" not in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValidationError" in result.stderr  # the cause the one-line message hides
    assert result.stderr.strip().splitlines()[-1].startswith("error: recipe")
    again = invoke("validate", toy_recipe, "--set", "train.steps=many")  # --debug does not stick
    refused(again, "train.steps")


def test_debug_traceback_of_a_failed_run(toy_recipe, tmp_path, monkeypatch):
    from conftest import ToyModel

    def broken(self, batch, shape):
        raise RuntimeError("device on fire")

    monkeypatch.setattr(ToyModel, "losses", broken)
    result = invoke("--debug", "run", toy_recipe, "--out", tmp_path / "r")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "in broken" in result.stderr and "NoneType: None" not in result.stderr


# --- --out and the other path options -----------------------------------------------------------------


def test_out_that_is_a_file(toy_recipe, tmp_path, never_loads):
    target = tmp_path / "taken"
    target.write_text("precious")
    refused(invoke("run", toy_recipe, "--out", target), "--out", "not a directory")
    assert target.read_text() == "precious"


def test_out_through_a_file(toy_recipe, tmp_path, never_loads):
    blocker = tmp_path / "file"
    blocker.write_text("precious")
    refused(invoke("run", toy_recipe, "--out", blocker / "run"), "--out", f"{blocker} is a file")
    assert blocker.read_text() == "precious"


def test_out_non_empty_is_refused_before_the_model_loads(toy_recipe, tmp_path, never_loads):
    out = tmp_path / "run"
    out.mkdir()
    (out / "result.json").write_text("{}")
    refused(invoke("run", toy_recipe, "--out", out), "--out", "not empty")
    assert (out / "result.json").read_text() == "{}"


def test_out_unwritable(toy_recipe, tmp_path, never_loads):
    if os.geteuid() == 0:  # root writes through permission bits: use a place no one can create in
        if not Path("/sys").is_dir():
            pytest.skip("root, and no /sys")
        target = Path("/sys/zofw-hostile-test-run")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "run"
    refused(invoke("run", toy_recipe, "--out", target), "--out", str(target))
    assert not target.exists()


def test_dangling_link_as_out(toy_recipe, tmp_path, never_loads):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    refused(invoke("run", toy_recipe, "--out", link), "--out", "symbolic link")


def test_bad_input_found_after_the_directory_is_created_leaves_nothing(toy_recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(invoke("run", toy_recipe, "--set", "train.expected_batch=100000"), "expected_batch")
    assert not list((tmp_path / "runs").glob("*"))  # the default run directory was removed again
    refused(invoke("run", toy_recipe, "--set", "train.expected_batch=100000", "--out", tmp_path / "a" / "b"))
    assert not (tmp_path / "a").exists()


def test_runs_started_in_the_same_second_never_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *args: "20260101-000000")
    claimed: list[Path] = []
    lock = threading.Lock()

    def start() -> None:
        for _ in range(10):
            path = cli.fresh_run_dir("quickstart")
            with lock:
                claimed.append(path)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(claimed)) == 80 and all(p.is_dir() for p in claimed)


def test_two_processes_in_the_same_second(tmp_path):
    code = ("import sys, time; time.strftime = lambda *a: 'same'; from zofw.cli import fresh_run_dir; "
            "print(fresh_run_dir('q'))")
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    names = [proc.communicate(timeout=60)[0].strip() for proc in procs]
    assert len(set(names)) == 4, names


@pytest.mark.parametrize("setup, fragment", [
    (lambda d: (d / "x.png").write_text("keep"), "exists; it is not overwritten"),
    (lambda d: None, "no such directory"),
    (lambda d: (d / "f").write_text("keep"), "is a file, not a directory"),
])
def test_plot_paths(tmp_path, setup, fragment):
    setup(tmp_path)
    target = {"no such directory": tmp_path / "missing" / "x.png",
              "is a file, not a directory": tmp_path / "f" / "x.png"}.get(fragment, tmp_path / "x.png")
    refused(invoke("privacy", "compare", "--sampling-rate", "0.01", "--noise-multiplier", "1", "--steps", "10",
                   "--plot", target), "--plot")
    if (tmp_path / "x.png").exists():
        assert (tmp_path / "x.png").read_text() == "keep"


def test_profile_path_is_checked_before_the_benchmark(toy_recipe, tmp_path, never_loads):
    refused(invoke("bench", toy_recipe, "--profile", tmp_path / "missing" / "p.txt"), "--profile",
            "no such directory")
    refused(invoke("bench", toy_recipe, "--batch", "0"), "--batch")


def test_privacy_target_that_is_nothing():
    refused(invoke("privacy", "/nonexistent/run"), "not compare, calibrate, a recipe or a run directory")


def test_missing_model_and_tokenizer_directories_name_their_keys(tmp_path):
    refused(invoke("validate", OPT, "--set", f"model.path={tmp_path / 'nope'}"), "model.path", "no such directory")
    model = fake_model_dir(tmp_path / "model")
    refused(invoke("validate", OPT, "--set", f"model.path={model}", "--set", f"model.tokenizer={tmp_path / 'nope'}"),
            "model.tokenizer", "no such directory")


# --- input dropped silently ---------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", [
    'privacy.report=["rdp"]\nfoo = 1',
    'estimator={name = "dpzero", smoothing = 1e-3}\n[noise]\nname = "laplace"',
    'model.name="toy_linear"\nseed = 5',
    "train.steps=[1] x = 2",
])
def test_trailing_toml_after_an_override_value(toy_recipe, assignment):
    refused(invoke("validate", toy_recipe, "--set", assignment), "override")


@pytest.mark.parametrize("table, fragments", [
    ('[noise]\nname = "gaussian"', ("not private", "[noise]")),
    ('[noise]\nname = "gausian"', ("not private", "[noise]")),
    ('[noise]\nname = "gaussian"\nsigma = 3', ("not private", "[noise]")),
    ('[noise]\nnmae = "gaussian"', ("noise.name", "missing")),
])
def test_noise_table_with_a_non_private_estimator(toy_plugin, tmp_path, table, fragments):
    recipe = tmp_path / "mezo.toml"
    recipe.write_text(TOY_TWO_POINT + table + "\n")
    refused(invoke("validate", recipe), *fragments)


def test_misspelled_tables_and_keys_suggest_the_right_one(toy_recipe, tmp_path):
    bad = tmp_path / "typo.toml"
    bad.write_text(toy_recipe.read_text() + '[noize]\nname = "gaussian"\n')
    refused(invoke("validate", bad), "noize", "did you mean 'noise'")
    refused(invoke("validate", toy_recipe, "--set", "train.stpes=3"), "train.stpes", "did you mean 'steps'")
    refused(invoke("validate", toy_recipe, "--set", "estimator.smothing=0.1"), "estimator.smothing",
            "did you mean 'smoothing'")


# --- every recipe key's range -------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", [
    "train.steps=0", "train.steps=-3", f"train.steps={10**9 + 1}", "train.steps=2.5",
    "train.expected_batch=0", "train.expected_batch=-1", f"train.expected_batch={2**31 + 1}",
    "train.lr=0", "train.lr=-0.1", "train.weight_decay=-1",
    "train.eval_every=-1", "train.log_every=-1", f"train.eval_every={10**9 + 1}",
    "train.microbatch=-1", f"train.microbatch={2**16 + 1}", "train.eval_batch=0", f"train.eval_batch={2**16 + 1}",
    "train.sampling=sometimes",
    "privacy.epsilon=0", "privacy.epsilon=-1", "privacy.noise_multiplier=0", "privacy.delta=0", "privacy.delta=1",
    "privacy.delta=2", "privacy.max_epsilon=0", 'privacy.accountant=""', "privacy.report=[]",
    'estimator.name=""', "seed=-5",
])
def test_every_recipe_key_has_a_range(toy_recipe, assignment):
    key = assignment.split("=")[0]
    refused(invoke("validate", toy_recipe, "--set", assignment), key)


def test_epsilon_and_sigma_together_or_neither(toy_recipe):
    refused(invoke("validate", toy_recipe, "--set", "privacy.noise_multiplier=1.0"), "privacy", "exactly one")


# --- permissions --------------------------------------------------------------------------------------


def test_run_files_share_one_mode(toy_recipe, tmp_path):
    previous = os.umask(0o022)
    try:
        out = tmp_path / "r"
        assert invoke("run", toy_recipe, "--out", out, "--set", "train.steps=3").exit_code == 0
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.is_file()}
    assert {"recipe.toml", "metrics.jsonl", "privacy_ledger.json", "result.json", "provenance.json"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_secret_files_are_0600(tmp_path):
    write_json(tmp_path / "key.json", {"k": 1}, secret=True)
    assert stat.S_IMODE((tmp_path / "key.json").stat().st_mode) == 0o600
    assert file_mode(secret=True) == 0o600


# --- provenance ---------------------------------------------------------------------------------------


def test_every_run_records_its_provenance(toy_recipe, tmp_path):
    out = tmp_path / "r"
    assert invoke("run", toy_recipe, "--out", out, "--set", "train.steps=3").exit_code == 0
    record = json.loads((out / "provenance.json").read_text())
    assert record["libraries"]["torch"] and record["libraries"]["zofw"] and record["libraries"]["python"]
    assert record["compute"]["device"] == "cpu" and record["compute"]["dtype"] == "float32"
    assert {"zo", "privacy", "hf", "tasks"} <= set(record["plugins"])
    if (REPO / ".git").exists():
        assert len(record["git"]["commit"]) == 40 and isinstance(record["git"]["dirty"], bool)


def test_input_hashes_of_a_model_directory_and_a_data_file(tmp_path, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("ZOFW_CACHE_DIR", str(tmp_path / "cache"))
    model = fake_model_dir(tmp_path / "model")
    data = tmp_path / "train.json"
    data.write_text('{"a": 1}')
    parts = SimpleNamespace(
        model=SimpleNamespace(options=SimpleNamespace(path=str(model), tokenizer=None, random_init=False,
                                                      model_dump=lambda: {})),
        task=SimpleNamespace(options=SimpleNamespace(path=str(data), eval_path=None, model_dump=lambda: {})))
    record = provenance.input_hashes(parts)
    assert record["task.path"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    files = record["model.path"]["files"]
    assert set(files) == {"config.json", "model.safetensors", "vocab.json", "merges.txt"}
    assert files["config.json"] == hashlib.sha256((model / "config.json").read_bytes()).hexdigest()
    cache = provenance.HashCache()
    assert len(cache.entries) == 5  # remembered by path, size and mtime
    cache.digest(data)
    assert not cache.changed  # a second run hashes nothing again
    data.write_text('{"a": 2}')
    assert cache.digest(data) == hashlib.sha256(b'{"a": 2}').hexdigest() and cache.changed


def test_a_hub_blob_is_named_by_its_sha256(tmp_path):
    digest = hashlib.sha256(b"weights").hexdigest()
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / digest).write_bytes(b"weights")
    (tmp_path / "model.safetensors").symlink_to(blobs / digest)
    cache = provenance.HashCache(tmp_path / "c.json")
    assert cache.digest(tmp_path / "model.safetensors") == digest and not cache.changed


def test_git_revision_of_a_checkout(tmp_path):
    repo = tmp_path / "checkout"
    (repo / "zofw").mkdir(parents=True)
    (repo / "zofw" / "x.py").write_text("")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    try:
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "x"], check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not usable here")
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = provenance.git_revision(repo / "zofw" / "x.py")
    assert record["commit"] == head and record["dirty"] is False
    (repo / "zofw" / "x.py").write_text("changed")
    assert provenance.git_revision(repo / "zofw" / "x.py")["dirty"] is True
    assert provenance.git_revision(tmp_path / "elsewhere" / "zofw" / "x.py") is None


# --- property-based: the recipe parser and the overrides ----------------------------------------------

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
scalars = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), st.text(max_size=20).filter(lambda s: "\0" not in s))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)), max_leaves=10)


@PROPERTY
@given(assignment=st.text(max_size=60))
def test_any_override_text_is_applied_or_refused_in_one_line(assignment):
    data = {"train": {"steps": 3}}
    try:
        apply_override(data, assignment)
    except BadInput as error:
        assert len(str(error).splitlines()) == 1
        return
    key = assignment.partition("=")[0]
    assert all(part.strip() for part in key.split("."))


def inline(value) -> str:
    """``value`` as one inline TOML value."""
    import tomli_w

    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {inline(v)}" for k, v in value.items()) + "}"
    return tomli_w.dumps({"v": value}).partition("=")[2].strip()


@PROPERTY
@given(path=st.lists(keys, min_size=1, max_size=4), value=values)
def test_an_override_sets_exactly_its_value_and_nothing_else(path, value):
    if path[0] == "untouched":
        return
    data: dict = {"untouched": {"x": 1}}
    literal = inline(value)
    apply_override(data, f"{'.'.join(path)}={literal}")
    expected = value if literal[:1] in "[{\"'" else literal  # scalars stay text for the schema to type
    assert _get(data, path) == expected and data["untouched"] == {"x": 1}


def _get(data, path):
    for part in path:
        data = data[part]
    return data


@PROPERTY
@given(value=values, where=st.lists(keys, min_size=1, max_size=3),
       bad=st.sampled_from([float("inf"), float("-inf"), float("nan"), 2**64, -(2**63) - 1, "a\0b"]))
def test_check_values_finds_any_bad_value_by_its_key(value, where, bad):
    check_values(value)  # finite, 64-bit, no NUL: passes
    nested = bad
    for part in reversed(where):
        nested = {part: nested}
    with pytest.raises(BadInput) as caught:
        check_values({"ok": value, **nested})
    assert ".".join(where) in str(caught.value)


@PROPERTY
@given(raw=st.binary(max_size=300))
def test_any_bytes_are_a_recipe_or_one_line(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("bytes") / "r.toml"
    path.write_bytes(raw)
    try:
        load_recipe(path)
    except BadInput as error:
        assert len(str(error).splitlines()) == 1 and str(path) in str(error)


@PROPERTY
@given(steps=st.integers(1, 10**9), batch=st.floats(0.01, 1e6), lr=st.floats(1e-12, 1e3),
       seed=st.integers(0, 2**63 - 1), epsilon=st.floats(1e-3, 1e3), delta=st.floats(1e-12, 0.5),
       sampling=st.sampled_from(["poisson", "fixed_size"]))
def test_valid_recipes_round_trip_through_toml(tmp_path_factory, steps, batch, lr, seed, epsilon, delta, sampling):
    import tomli_w

    data = {"seed": seed, "model": {"name": "m"}, "task": {"name": "t"}, "estimator": {"name": "e"},
            "privacy": {"epsilon": epsilon, "delta": delta},
            "train": {"steps": steps, "expected_batch": batch, "lr": lr, "sampling": sampling}}
    path = tmp_path_factory.mktemp("rt") / "r.toml"
    path.write_text(tomli_w.dumps(data))
    recipe = load_recipe(path)
    assert recipe == Recipe.model_validate(data)
    again = tmp_path_factory.mktemp("rt") / "again.toml"
    again.write_text(tomli_w.dumps(recipe.model_dump(mode="json", exclude_none=True)))
    assert load_recipe(again) == recipe


@PROPERTY
@given(key=st.sampled_from(["train.lr", "train.expected_batch", "train.weight_decay", "privacy.epsilon",
                            "privacy.delta", "clipper.bound", "estimator.smoothing"]),
       text=st.sampled_from(["inf", "-inf", "nan", "NaN", "+inf", "Infinity", "-Infinity", "1e400", "-1e999"]))
def test_non_finite_text_is_refused_for_every_float_key(toy_recipe, key, text):
    result = invoke("validate", toy_recipe, "--set", f"{key}={text}")
    refused(result, key)


@PROPERTY
@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63)))
def test_out_of_range_seeds_never_reach_torch(tmp_path_factory, seed):
    path = tmp_path_factory.mktemp("seed") / "r.toml"
    path.write_text('[model]\nname = "m"\n[task]\nname = "t"\n[estimator]\nname = "e"\n'
                    "[train]\nsteps = 1\nexpected_batch = 1\nlr = 0.1\n")
    with pytest.raises(BadInput, match="seed"):
        load_recipe(path, [f"seed={seed}"])


def test_reading_a_recipe_never_hangs_on_a_fifo_with_data(tmp_path, toy_recipe):
    fifo = tmp_path / "r.toml"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(toy_recipe.read_text()))
    writer.start()
    data = read_toml(fifo)
    writer.join(5)
    assert data["train"]["steps"] == 300 and math.isclose(data["train"]["lr"], 0.05)


@pytest.mark.parametrize("text, fragment", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"delta": NaN, "events": []}', "NaN is not JSON"),
    ('{"delta": Infinity}', "Infinity is not JSON"),
    ("garbage", "Expecting value"),
    (b"\xff\xfe{}", "utf-8"),
    (None, "no such file"),
])
def test_read_json_refuses_in_one_line_naming_the_file(tmp_path, text, fragment):
    from zofw.rundir import read_json

    path = tmp_path / "privacy_ledger.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(BadInput) as caught:
        read_json(path, "privacy ledger")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and str(path) in message and fragment in message, message
    assert "not a privacy ledger" in message


def test_a_very_long_name_is_not_a_crash(tmp_path):
    long = "x" * 5000
    refused(invoke("validate", OPT, "--set", f"model.path={long}"), "model.path")
    refused(invoke("validate", OPT, "--set", f"model.path=/{long}"), "model.path")
    refused(invoke("validate", tmp_path / long), "recipe", "file name too long")
    refused(invoke("run", Q_RECIPE, "--out", tmp_path / long), "--out")
