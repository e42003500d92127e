"""Hugging Face habits in the model table: dtype aliases and the checkpoint's own dtype, device strings,
a hub revision."""

from __future__ import annotations

import pytest
import torch

from zofw.errors import BadInput
from zofw_hf.causal import CausalLM
from zofw_hf.common import resolve_dtype


@pytest.mark.parametrize("alias,dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", torch.float32),
                                         ("float16", torch.float16)])
def test_dtype_aliases(alias, dtype):
    assert resolve_dtype(alias, torch.device("cpu")) == dtype
    assert resolve_dtype("checkpoint", torch.device("cpu")) == "auto"  # transformers' word for the stored dtype


def test_the_checkpoints_own_dtype_is_kept(tiny_opt, shared_data, tmp_path):
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(tiny_opt), dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    adapter = CausalLM(CausalLM.Options(path=str(tmp_path / "bf16"), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                        device="cpu", dtype="checkpoint", trainable="bias"))
    adapter.load("generation")
    assert next(adapter.model.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("device", ["cuda:1", "mps", "cpu", "auto", "cuda"])
def test_device_strings_are_accepted(device):
    assert CausalLM.Options(path="x", device=device).device == device


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda1", "tpu"])
def test_other_device_strings_are_refused(device):
    with pytest.raises(ValueError):
        CausalLM.Options(path="x", device=device)


def test_a_gpu_this_machine_lacks_is_refused_in_one_line(tiny_opt):
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), device="cuda:7"))
    with pytest.raises(BadInput, match="model.device"):
        adapter.load("generation")


def test_validate_json_prints_the_resolved_recipe():
    import json

    from typer.testing import CliRunner

    from zofw.cli import app

    result = CliRunner().invoke(app, ["validate", "recipes/dpzero_opt2.7b_drop.toml", "--json",
                                      "--set", 'model.dtype="bf16"', "--set", 'model.device="cuda:1"'])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["ok"] and record["resolved"]["model"]["dtype"] == "bf16"
    assert record["resolved"]["model"]["device"] == "cuda:1" and "revision" not in record["resolved"]["model"]
    assert record["resolved"]["estimator"]["smoothing"] > 0  # defaults filled in
