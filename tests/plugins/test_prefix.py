"""Prefix tuning through peft: only the prefix trains, the model stays bitwise, the result loads as a peft
adapter, for the causal and the masked adapter alike."""

from __future__ import annotations

import json

import pytest
import torch

from zofw.errors import BadInput
from zofw.evaluate import per_example_losses
from zofw.slots.estimator import UpdateContext
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM
from zofw_zo.estimators import DPZero, SmoothingOptions

GENERATION = [Example(f"Passage: item {i}.\nQuestion: which?\nAnswer:", (f" {i}\n",)) for i in range(4)]
SENTIMENT = [Example(f"review {i} was", (" great",), (" terrible", " great"), 1, ".") for i in range(4)]


def causal(tiny_opt, shared_data, **prefix) -> CausalLM:
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                        device="cpu", dtype="float32", max_length=64, trainable="prefix",
                                        prefix=prefix or None))
    adapter.load("generation")
    return adapter


def masked(tiny_roberta, shared_data) -> MaskedLM:
    adapter = MaskedLM(MaskedLM.Options(path=str(tiny_roberta), device="cpu", dtype="float32", max_length=64,
                                        tokenizer=str(shared_data / "tokenizers" / "roberta"), trainable="prefix"))
    adapter.load("classification")
    return adapter


def train(adapter, params, examples, steps: int = 3) -> None:
    items = adapter.encode(examples)
    estimator = DPZero(SmoothingOptions(smoothing=1e-2))
    with torch.inference_mode():
        for step in range(1, steps + 1):
            estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed=step)
            estimator.update(params, step, torch.tensor([20.0]), UpdateContext(step, 1e-2, 0.0))


@pytest.mark.parametrize("family", ["causal", "masked"])
def test_only_the_prefix_trains_and_it_changes_the_losses(family, tiny_opt, tiny_roberta, shared_data):
    adapter = causal(tiny_opt, shared_data, virtual_tokens=3) if family == "causal" else \
        masked(tiny_roberta, shared_data)
    examples = GENERATION if family == "causal" else SENTIMENT
    params = adapter.trainable()
    assert params.names and all(name.startswith("prompt_encoder.") for name in params.names)
    model_before = {name: p.detach().clone() for name, p in adapter.model.named_parameters()}
    prefix_before = [t.clone() for t in params.tensors]
    with torch.inference_mode():
        losses_before = per_example_losses(adapter, adapter.encode(examples), 4)
    train(adapter, params, examples)
    assert all(torch.equal(p, model_before[name]) for name, p in adapter.model.named_parameters())
    assert not all(torch.equal(a, b) for a, b in zip(params.tensors, prefix_before))
    with torch.inference_mode():
        losses_after = per_example_losses(adapter, adapter.encode(examples), 4)
    assert not torch.equal(losses_before, losses_after)  # the forward really sees the trained prefix


def test_the_saved_prefix_loads_with_peft_and_gives_the_same_model(tiny_opt, shared_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = causal(tiny_opt, shared_data, virtual_tokens=4)
    with torch.no_grad():
        for tensor in adapter.trainable().tensors:
            tensor.normal_(0, 0.5)  # trained values stand-in: any values must round-trip
    ids = torch.tensor([[2, 100, 200, 300, 400]])
    with torch.inference_mode():
        want = adapter.tuned(input_ids=ids).logits
    assert adapter.save_trained(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "PREFIX_TUNING" and config["base_model_name_or_path"] == str(tiny_opt)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_opt), dtype=torch.float32).eval()
    with torch.inference_mode():
        got = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_prefix_settings_without_prefix_training_are_refused(tiny_opt):
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), trainable="all", prefix={"virtual_tokens": 4}))
    with pytest.raises(BadInput, match="model.prefix"):
        adapter.check()


def test_a_prefix_run_from_a_recipe_saves_its_adapter(tiny_roberta, shared_data, tmp_path):
    from typer.testing import CliRunner

    from zofw.cli import app

    result = CliRunner().invoke(app, [
        "run", "recipes/dpzero_roberta-large_sst2.toml", "--json", "--out", str(tmp_path / "run"),
        "--set", f"model.path={tiny_roberta}", "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'roberta'}",
        "--set", "model.device=cpu", "--set", "model.dtype=float32", "--set", 'model.trainable="prefix"',
        "--set", "model.prefix={virtual_tokens = 2}",
        "--set", f"task.path={shared_data / 'sst2' / 'train.tsv'}",
        "--set", f"task.eval_path={shared_data / 'sst2' / 'dev.tsv'}", "--set", "task.n_train=16", "--set", "task.n_eval=8",
        "--set", "train.steps=4", "--set", "train.expected_batch=4", "--set", "train.eval_every=0",
        "--set", "privacy.accountant=rdp",
        "--set", 'privacy.report=["rdp"]'])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").exists() and record["adapter"].endswith("adapter")
