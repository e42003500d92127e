"""LoRA through peft: only the adapter trains, the base stays bitwise, the result loads as a peft adapter."""

from __future__ import annotations

import pytest
import torch

from zofw.errors import BadInput
from zofw.evaluate import per_example_losses
from zofw.slots.estimator import UpdateContext
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_zo.estimators import DPZero, SmoothingOptions

EXAMPLES = [Example(f"Passage: item {i}.\nQuestion: which?\nAnswer:", (f" {i}\n",)) for i in range(4)]


def lora_adapter(tiny_opt, shared_data, **lora) -> CausalLM:
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                        device="cpu", dtype="float32", max_length=64, trainable="lora",
                                        lora=lora or None))
    adapter.load("generation")
    return adapter


def test_only_the_adapter_trains_and_the_base_stays_bitwise(tiny_opt, shared_data):
    adapter = lora_adapter(tiny_opt, shared_data, r=4, alpha=8)
    params, items = adapter.trainable(), adapter.encode(EXAMPLES)
    assert params.names and all(".lora_A." in n or ".lora_B." in n for n in params.names)
    before = {name: p.detach().clone() for name, p in adapter.model.named_parameters()}
    estimator = DPZero(SmoothingOptions(smoothing=1e-2))
    with torch.inference_mode():
        for step in range(1, 4):
            estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed=step)
            estimator.update(params, step, torch.tensor([20.0]), UpdateContext(step, 1e-2, 0.0))
    changed = {name for name, p in adapter.model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(".lora_" in name for name in changed)
    assert any(".lora_B." in name for name in changed)  # B starts at 0: the adapter starts as the base model


def test_the_saved_adapter_loads_with_peft_and_gives_the_same_model(tiny_opt, shared_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = lora_adapter(tiny_opt, shared_data)
    params = adapter.trainable()
    with torch.no_grad():
        for tensor in params.tensors:
            tensor.normal_(0, 0.1)  # trained weights stand-in: any values must round-trip
    ids = torch.tensor([[2, 100, 200, 300, 400]])
    with torch.inference_mode():
        want = adapter.model(input_ids=ids).logits
    assert adapter.save_trained(tmp_path / "adapter")
    base = AutoModelForCausalLM.from_pretrained(str(tiny_opt), dtype=torch.float32).eval()
    with torch.inference_mode():
        got = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_lora_settings_without_lora_training_are_refused(tiny_opt, shared_data):
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), trainable="all", lora={"r": 4}))
    with pytest.raises(BadInput, match="model.lora"):
        adapter.check()


def test_a_lora_run_from_a_recipe_saves_its_adapter(tiny_opt, shared_data, tmp_path):
    import json

    from typer.testing import CliRunner

    from zofw.cli import app

    result = CliRunner().invoke(app, [
        "run", "recipes/dpzero_opt2.7b_drop.toml", "--json", "--out", str(tmp_path / "run"),
        "--set", f"model.path={tiny_opt}", "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}",
        "--set", "model.device=cpu", "--set", "model.dtype=float32", "--set", "model.max_length=256",
        "--set", 'model.trainable="lora"', "--set", "model.lora={r = 4}",
        "--set", f"task.path={shared_data / 'drop' / 'drop_train_sample.json'}", "--set", "task.n_train=32",
        "--set", "task.n_eval=4", "--set", "task.held_out_public=true", "--set", "train.steps=5",
        "--set", "train.eval_every=0", "--set", "privacy.accountant=rdp", "--set", 'privacy.report=["rdp"]'])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").exists() and record["adapter"].endswith("adapter")
