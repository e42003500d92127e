"""`zofw eval RUN_DIR` rebuilds the fine-tuned model from what the run saved and reproduces the run's
final metrics exactly (CPU): a full fine-tune (a standard checkpoint, loadable with from_pretrained), a
trained subset (biases or a regex) beside its base model, LoRA and prefix adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from typer.testing import CliRunner

from zofw.cli import app

RECIPE = """
seed = 7
[model]
name = "{model}"
path = "{path}"
tokenizer = "{tokenizer}"
device = "cpu"
dtype = "float32"
max_length = 96
trainable = '{trainable}'
[task]
name = "sst2"
path = "{data}/sst2/train.tsv"
eval_path = "{data}/sst2/dev.tsv"
template = "{template}"
n_train = 16
n_eval = 12
[estimator]
name = "two_point"
[train]
steps = 2
expected_batch = 4
lr = {lr}
eval_batch = 5
"""


def finished_run(tmp_path: Path, data: Path, model_dir: Path, trainable: str, masked: bool = False,
                 lr: float = 1e-2) -> tuple[Path, dict]:
    text = RECIPE.format(model="masked_lm" if masked else "causal_lm", path=model_dir, trainable=trainable,
                         tokenizer=data / "tokenizers" / ("roberta" if masked else "opt"), data=data,
                         template="masked" if masked else "causal", lr=lr)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "recipe.toml").write_text(text)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(tmp_path / "recipe.toml"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, last_json(result.output)


def zofw_eval(*args: str) -> dict:
    result = CliRunner().invoke(app, ["eval", *args, "--json"])
    assert result.exit_code == 0, result.output
    return last_json(result.output)


def last_json(output: str) -> dict:
    """The JSON object that ends the output (a progress bar on stderr may precede it on its line)."""
    line = output.strip().splitlines()[-1]
    return json.loads(line[line.index('{"'):])


def test_a_full_fine_tune_is_a_standard_checkpoint_and_eval_reproduces_the_run(tiny_opt, shared_data, tmp_path):
    run, result = finished_run(tmp_path, shared_data, tiny_opt, "all")
    saved = run / "adapter"
    assert result["metrics"]["loss"] != result["metrics_before"]["loss"]  # training moved the weights
    marker = json.loads((saved / "zofw_fine_tune.json").read_text())
    assert marker["format"] == "full" and marker["base"] == str(tiny_opt)
    model = transformers.AutoModelForCausalLM.from_pretrained(saved)
    tokenizer = transformers.AutoTokenizer.from_pretrained(saved)
    assert tokenizer("It was").input_ids == transformers.AutoTokenizer.from_pretrained(
        shared_data / "tokenizers" / "opt")("It was").input_ids
    base = transformers.AutoModelForCausalLM.from_pretrained(tiny_opt)
    from safetensors.torch import load_file

    # the saved checkpoint is the run's final state: the same weights as a replay of its seed log
    replayed = CliRunner().invoke(app, ["replay", str(tiny_opt), str(run / "seedlog.bin"), "--out",
                                        str(tmp_path / "replayed")])
    assert replayed.exit_code == 0, replayed.output
    trained = load_file(str(tmp_path / "replayed" / "adapter" / "model.safetensors"))
    mine = dict(model.named_parameters())
    assert len(set(trained) & set(mine)) > 10
    assert all(torch.equal(mine[name], tensor) for name, tensor in trained.items() if name in mine)
    assert not torch.equal(mine["model.decoder.layers.0.fc1.weight"], dict(base.named_parameters())[
        "model.decoder.layers.0.fc1.weight"])
    record = zofw_eval(str(run))
    assert record["metrics"] == result["metrics"] == record["run_metrics"]
    assert record["task"] == "sst2" and record["examples"] == 12 and "full checkpoint" in record["fine_tune"]
    text = CliRunner().invoke(app, ["eval", str(run)])
    assert text.exit_code == 0 and "the run reported" in text.output and "accuracy" in text.output


@pytest.mark.parametrize("trainable", ["bias", r"fc\d\.bias|self_attn_layer_norm"])
def test_a_subset_run_saves_only_the_subset_and_eval_reproduces_it(tiny_opt, shared_data, tmp_path, trainable):
    run, result = finished_run(tmp_path, shared_data, tiny_opt, trainable, lr=0.5)
    saved = run / "adapter"
    assert sorted(p.name for p in saved.iterdir()) == ["trainable.safetensors", "zofw_fine_tune.json"]
    marker = json.loads((saved / "zofw_fine_tune.json").read_text())
    assert marker["format"] == "subset" and marker["base"] == str(tiny_opt) and marker["trainable"] == trainable
    assert result["metrics"]["loss"] != result["metrics_before"]["loss"]
    record = zofw_eval(str(run))
    assert record["metrics"] == result["metrics"]
    assert "subset" in record["fine_tune"]


def test_lora_and_prefix_runs_are_evaluated_from_their_peft_adapters(tiny_opt, shared_data, tmp_path):
    for trainable in ("lora", "prefix"):
        run, result = finished_run(tmp_path / trainable, shared_data, tiny_opt, trainable, lr=0.5)
        assert (run / "adapter" / "adapter_config.json").is_file()
        assert result["metrics"]["loss"] != result["metrics_before"]["loss"]
        assert zofw_eval(str(run))["metrics"] == result["metrics"], trainable


def test_a_masked_lm_fine_tune(tiny_roberta, shared_data, tmp_path):
    run, result = finished_run(tmp_path, shared_data, tiny_roberta, "all", masked=True)
    assert transformers.AutoModelForMaskedLM.from_pretrained(run / "adapter") is not None
    assert zofw_eval(str(run))["metrics"] == result["metrics"]


def test_eval_on_another_task_and_with_overrides(tiny_opt, shared_data, tmp_path):
    run, result = finished_run(tmp_path, shared_data, tiny_opt, "bias", lr=0.5)
    fewer = zofw_eval(str(run), "--set", "task.n_eval=5")
    assert fewer["examples"] == 5 and set(fewer["metrics"]) == set(result["metrics"])
    other = zofw_eval(str(run), "--task", "boolq", "--set", f"task.path={shared_data}/superglue/BoolQ/val.jsonl",
                      "--set", "task.n_eval=4", "--set", "task.n_train=4")
    assert other["task"] == "boolq" and other["examples"] == 4 and "run_metrics" not in other
    assert 0 <= other["metrics"]["accuracy"] <= 100  # a percentage, as every accuracy zofw reports


def test_eval_refuses_what_is_not_a_finished_run(tmp_path, tiny_opt, shared_data):
    result = CliRunner().invoke(app, ["eval", str(tmp_path)])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: {tmp_path}: not a zofw run directory (no recipe.toml)"]
    run, _ = finished_run(tmp_path, shared_data, tiny_opt, "bias", lr=0.5)
    (run / "adapter" / "zofw_fine_tune.json").write_text("{not json")
    broken = CliRunner().invoke(app, ["eval", str(run)])
    assert broken.exit_code == 2 and "zofw_fine_tune.json: unreadable" in broken.output
