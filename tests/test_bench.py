"""`zofw bench` on CPU: the same measurements as on a GPU, on a tiny OPT (smoke test, no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from zofw.cli import app

KEYS = {"fwd_ms", "step_ms", "ref_step_ms", "step_over_2fwd", "speedup_vs_ref", "peak_gib", "inference_peak_gib",
        "ref_peak_gib", "passes_per_step", "device"}


def test_bench_reports_every_ratio_on_cpu(tiny_opt, shared_data, tmp_path):
    result = CliRunner().invoke(app, [
        "bench", "recipes/dpzero_opt2.7b_drop.toml", "--json", "--batch", "4", "--length", "64",
        "--repeats", "2", "--warmup", "1", "--profile", str(tmp_path / "profile.txt"),
        "--set", f"model.path={tiny_opt}", "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}",
        "--set", "model.device=cpu", "--set", "model.dtype=float32",
    ])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert KEYS <= set(record) and record["device"] == "cpu"
    # two reads of each weight per step: the update rides on the +λ probe's pass. The embedding matrix is
    # tied to the LM head: the head forms it in each probe, the lookup takes its rows only (≈ 0.01 of a
    # pass here), and the first probe applies the pending update to it in place
    tied = 50272 * 32
    assert abs(record["passes_per_step"] - (2 + tied / record["trainable_parameters"])) < 0.02
    assert record["fwd_ms"] > 0 and record["step_ms"] > 0 and record["ref_step_ms"] > 0
    assert record["varied_fixed_shape_fwd_ms"] > 0 and record["varied_padded_fwd_ms"] > 0
    assert "aten::" in (tmp_path / "profile.txt").read_text()  # where the step's time went


def test_bench_refuses_a_bad_batch(tiny_opt, shared_data):
    result = CliRunner().invoke(app, ["bench", "recipes/dpzero_opt2.7b_drop.toml", "--batch", "0",
                                      "--set", f"model.path={tiny_opt}", "--set", "model.device=cpu"])
    assert result.exit_code == 2


def test_a_published_short_name_with_random_weights_needs_no_hub(shared_data):
    from zofw.assemble import build
    from zofw.config import load_recipe
    from zofw.provenance import check_inputs, references

    recipe = load_recipe(Path("recipes/dpzero_opt2.7b_drop.toml"), [
        'model.path="opt-2.7b"', "model.random_init=true", f'model.tokenizer="{shared_data / "tokenizers" / "opt"}"'])
    parts = build(recipe, "test")
    assert not any(ref.key == "model.path" for ref in references(parts))
    check_inputs(parts, network=True, kinds=("model", "tokenizer"))  # offline: nothing to fetch, no refusal
