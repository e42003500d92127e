"""The secret randomness, tested as an adversary with the run directory would use it."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import zofw.privacy.secure as secure
import zofw.train as train
from zofw.cli import app
from zofw.privacy.secure import SecretStream
from zofw.sampling import PoissonSampler

KEY = bytes(range(101, 133))  # a recognisable 32-byte key planted as the OS's randomness


def run_toy(toy_recipe, out, *extra):
    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--json", "--out", str(out),
                                      "--set", "train.steps=30", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def spellings(key: bytes) -> list[bytes]:
    """Ways a key (or a seed derived from it) could end up written in a file."""
    words = [int.from_bytes(key[i:i + 8], "little") for i in range(0, 32, 8)]
    forms = [key.hex().encode(), base64.b64encode(key), str(int.from_bytes(key, "little")).encode()]
    forms += [str(w).encode() for w in words] + [str(w >> 1).encode() for w in words]
    return forms + [key]


def test_no_secret_appears_in_any_file_of_the_run_directory(toy_recipe, tmp_path, monkeypatch):
    monkeypatch.setattr(secure.os, "urandom", lambda n: KEY[:n])
    out = tmp_path / "run"
    record = run_toy(toy_recipe, out)
    assert record["privacy"]["private"] is True
    stream = SecretStream(KEY)
    derived = [str(stream.seed64()).encode() for _ in range(5)]  # seeds such a key would produce first
    for path in (p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for secret in spellings(KEY) + derived:
            assert secret not in data, f"{path.name} contains a secret"
    assert "secret" not in (out / "recipe.toml").read_text().split("\n", 1)[1]  # below the "# resolved from" line


def test_two_runs_of_the_same_recipe_share_no_batch(toy_recipe, tmp_path, monkeypatch):
    batches: list[list[tuple[int, ...]]] = []

    class Recording(PoissonSampler):
        def __init__(self, *args):
            super().__init__(*args)
            batches.append(self.drawn)

        drawn: list

        def sample(self):
            picked = super().sample()
            self.drawn.append(tuple(picked))
            return picked

    def recording(*args):
        sampler = Recording.__new__(Recording)
        sampler.drawn = []
        Recording.__init__(sampler, *args)
        return sampler

    import zofw.sampling

    monkeypatch.setattr(zofw.sampling, "PoissonSampler", recording)
    run_toy(toy_recipe, tmp_path / "a")
    run_toy(toy_recipe, tmp_path / "b")
    first, second = batches
    assert len(first) == len(second) == 30
    assert not set(first) & set(second)


def test_the_reproducible_secret_is_test_only_and_marks_the_run_not_private(toy_recipe, tmp_path, monkeypatch):
    monkeypatch.setenv(train.INSECURE_SECRET_ENV, "7")
    out = tmp_path / "run"
    record = run_toy(toy_recipe, out)
    assert record["privacy"]["private"] is False and "test-only" in record["privacy"]["not_private_because"]
    assert "7" not in (out / "recipe.toml").read_text().split("[privacy]")[1].split("[")[0]
    again = run_toy(toy_recipe, tmp_path / "again")
    assert again["metrics"] == record["metrics"]  # reproducible, which is exactly why it is not private


def test_a_recipe_cannot_carry_a_secret(toy_recipe, tmp_path):
    result = CliRunner().invoke(app, ["validate", str(toy_recipe), "--set", "privacy.secret_seed=7"])
    assert result.exit_code == 2 and "privacy.secret_seed: unknown key" in result.output


def test_poisson_coins_come_from_the_secure_stream_at_the_exact_rate():
    stream = SecretStream.for_testing(1)
    coins = stream.bernoulli(400_000, 0.03)
    assert abs(coins.mean() - 0.03) < 4 * np.sqrt(0.03 * 0.97 / 400_000)
    sampler = PoissonSampler(1000, 0.5, SecretStream())
    assert sampler.sample() != sampler.sample()


def test_a_secret_stream_refuses_to_be_pickled_or_shown():
    import pickle

    stream = SecretStream(KEY)
    assert KEY.hex() not in repr(stream)
    with pytest.raises(TypeError):
        pickle.dumps(stream)


def test_a_private_run_refuses_to_evaluate_on_a_split_of_its_own_private_file(tiny_opt, shared_data, tmp_path):
    out = tmp_path / "run"
    args = ["run", "recipes/dpzero_opt2.7b_drop.toml", "--out", str(out), "--set", f"model.path={tiny_opt}",
            "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}", "--set", "model.device=cpu",
            "--set", f"task.path={shared_data / 'drop' / 'drop_train_sample.json'}", "--set", "train.steps=2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "task.held_out_public" in result.output
    assert not out.exists()  # refused before anything was written
