"""Runs that survive: kill -9 at random moments, then `zofw resume`, gives the uninterrupted run's final
weights bit for bit and a ledger that counts every step once; SIGINT stops cleanly with a checkpoint;
`zofw replay` rebuilds the fine-tune from the base model and a seed log of ≤ 32 bytes per step."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from zofw.cli import app
from zofw.privacy.ledger import PrivacyLedger
from zofw.train import INSECURE_SECRET_ENV

# a subprocess running the CLI with the test suite's toy plugin (logistic regression on text vectors)
DRIVER = """
import sys, time
sys.path.insert(0, {tests!r})
import conftest
from conftest import ToyPlugin
plain = conftest.ToyModel.losses
conftest.ToyModel.losses = lambda self, batch, shape: (time.sleep(0.003), plain(self, batch, shape))[1]  # slow steps
from zofw.plugins import plugin_manager
plugin_manager().register(ToyPlugin(), name="toy-test-plugin")
from zofw.cli import app
app(sys.argv[1:], prog_name="zofw")
"""

STEPS = 400
SETTINGS = ["--set", f"train.steps={STEPS}", "--set", "train.eval_every=0", "--set", "train.log_every=10",
            "--set", "train.checkpoint_every=150", "--set", 'privacy.report=["rdp"]']


def driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER.format(tests=str(Path(__file__).parent)))
    return path


def zofw(tmp_path: Path, *args: str, **popen) -> subprocess.Popen:
    env = os.environ | {INSECURE_SECRET_ENV: "11"}
    return subprocess.Popen([sys.executable, str(driver(tmp_path)), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def finished(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def progress(run_dir: Path) -> int:
    """Bytes of seed log written so far (0 before the run has written one)."""
    path = run_dir / "seedlog.bin"
    return path.stat().st_size if path.exists() else 0


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    (last,) = sorted((run_dir / "checkpoints").glob("step-*"))
    return load_file(str(last / "trainable.safetensors"))


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run(toy_recipe, tmp_path):
    whole = finished(zofw(tmp_path, "run", str(toy_recipe), "--json", "--out", str(tmp_path / "whole"), *SETTINGS))
    rng = random.Random(7)
    out = tmp_path / "killed"
    process = zofw(tmp_path, "run", str(toy_recipe), "--json", "--out", str(out), *SETTINGS)
    kills = 0
    while kills < 4:
        # kill at a random moment once the process is stepping (its start-up time varies with the load),
        # which includes moments inside a checkpoint write, a seed-log append or a metrics record
        grown = progress(out)
        while process.poll() is None and progress(out) <= grown:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.6))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        started = (out / "recipe.toml").exists()  # else the kill came before the run wrote anything
        process = zofw(tmp_path, *(["resume", str(out), "--json"] if started else
                                   ["run", str(toy_recipe), "--json", "--out", str(out), *SETTINGS]))
    resumed = finished(process)
    assert kills >= 1, "the run ended before the first kill; make it slower"
    for name, tensor in final_weights(tmp_path / "whole").items():
        assert torch.equal(tensor, final_weights(out)[name]), name  # bit for bit
    ledger = PrivacyLedger.from_json((out / "privacy_ledger.json").read_text())
    assert ledger.steps == STEPS == resumed["privacy"]["steps"]
    assert resumed["privacy"]["epsilon"] == whole["privacy"]["epsilon"]
    def records(run_dir):
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    assert records(out) == records(tmp_path / "whole")  # every record once, as the uninterrupted run wrote it


def test_sigint_stops_at_a_step_boundary_with_a_checkpoint_and_resume_finishes(toy_recipe, tmp_path):
    out = tmp_path / "run"
    process = zofw(tmp_path, "run", str(toy_recipe), "--out", str(out), *SETTINGS)
    while process.poll() is None and progress(out) < 40 * 28:  # stepping (start-up time varies with the load)
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "zofw resume" in err.strip().splitlines()[-2] or "zofw resume" in err
    stopped_at = int(json.loads((sorted((out / "checkpoints").glob("step-*"))[-1] / "state.json").read_text())["step"])
    assert 0 < stopped_at < STEPS
    assert PrivacyLedger.from_json((out / "privacy_ledger.json").read_text()).steps == stopped_at
    result = finished(zofw(tmp_path, "resume", str(out), "--json"))
    assert result["steps"] == STEPS and result["resumed_from_step"] == stopped_at


def test_a_finished_run_is_not_resumed_and_a_non_run_is_refused(toy_recipe, tmp_path):
    out = tmp_path / "run"
    CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(out), "--set", "train.steps=5"])
    for target, words in ((out, "finished"), (tmp_path, "not a zofw run directory")):
        refused = CliRunner().invoke(app, ["resume", str(target)])
        assert refused.exit_code == 2 and words in refused.output


def test_replay_rebuilds_the_fine_tune_from_a_seed_log_of_at_most_32_bytes_per_step(tiny_opt, shared_data, tmp_path):
    out = tmp_path / "run"
    args = ["run", "recipes/dpzero_opt2.7b_drop.toml", "--json", "--out", str(out),
            "--set", f"model.path={tiny_opt}", "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}",
            "--set", "model.device=cpu", "--set", "model.dtype=float32", "--set", "model.max_length=256",
            "--set", 'model.trainable="bias"', "--set", f"task.path={shared_data / 'drop' / 'drop_train_sample.json'}",
            "--set", "task.n_train=32", "--set", "task.n_eval=4", "--set", "task.held_out_public=true",
            "--set", "train.steps=12", "--set", "train.expected_batch=4", "--set", "train.eval_every=0",
            "--set", "privacy.accountant=rdp", "--set", 'privacy.report=["rdp"]']
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    seedlog = out / "seedlog.bin"
    header_bytes = len(seedlog.read_bytes().split(b"\n", 1)[0]) + 1
    assert (seedlog.stat().st_size - header_bytes) / 12 <= 32
    rebuilt = CliRunner().invoke(app, ["replay", str(tiny_opt), str(seedlog), "--out", str(tmp_path / "replayed"),
                                       "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout.strip().splitlines()[-1])["steps"] == 12
    original, replayed = (load_file(str(d / "adapter" / "trainable.safetensors")) for d in (out, tmp_path / "replayed"))
    assert original.keys() == replayed.keys()
    assert all(torch.equal(original[name], replayed[name]) for name in original)
    base = load_file(str(next(tiny_opt.glob("*.safetensors"))))
    assert any(not torch.equal(original[name], base[name]) for name in original if name in base)  # it trained


def test_replay_refuses_what_is_not_a_seed_log(tmp_path):
    bogus = tmp_path / "seedlog.bin"
    bogus.write_text("hello\n")
    refused = CliRunner().invoke(app, ["replay", "base", str(bogus), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "not a zofw seed log" in refused.output
