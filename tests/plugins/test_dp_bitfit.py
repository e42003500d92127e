"""DP-BiTFiT: per-example bias gradients, the release, the optimizer step, and a run from a recipe."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from zofw.cli import app
from zofw.errors import BadInput
from zofw.evaluate import per_example_losses
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.estimator import UpdateContext
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_zo.bitfit import BitFitOptions, DPBitFit
from zofw_zo.clippers import BoundOptions, L2Clipper
from zofw_zo.noise import GaussianNoise

EXAMPLES = [Example(f"Passage: {'word ' * (2 * i)}item {i}.\nQuestion: which?\nAnswer:", (f" {i}\n",))
            for i in range(5)]


def bias_model(tiny_opt, shared_data, trainable="bias") -> CausalLM:
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                        device="cpu", dtype="float32", max_length=64, trainable=trainable))
    adapter.load("generation")
    return adapter


def test_per_example_bias_gradients_equal_single_example_backward_passes(tiny_opt, shared_data):
    adapter = bias_model(tiny_opt, shared_data)
    params, items = adapter.trainable(), adapter.encode(EXAMPLES)
    estimator = DPBitFit(BitFitOptions())
    estimator.prepare(params)
    with torch.inference_mode():  # as the loop calls it
        values = estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed=1).values
    assert values.shape == (5, params.numel())
    biases = [p for name, p in adapter.model.named_parameters() if name in set(params.names)]
    for i, item in enumerate(items):  # each example alone, in its own forward and backward
        for bias in biases:
            bias.requires_grad_(True)
        loss = per_example_losses(adapter, [item], 4)[0]
        alone = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, biases)]).double()
        for bias in biases:
            bias.requires_grad_(False)
        torch.testing.assert_close(values[i], alone, rtol=1e-4, atol=1e-6)
    assert all(not p.requires_grad for p in adapter.model.parameters())  # weights never get gradients


def test_a_private_step_changes_only_biases_and_is_one_gaussian(tiny_opt, shared_data):
    adapter = bias_model(tiny_opt, shared_data)
    params, items = adapter.trainable(), adapter.encode(EXAMPLES)
    before = {name: p.detach().clone() for name, p in adapter.model.named_parameters()}
    estimator = DPBitFit(BitFitOptions(optimizer="adam"))
    estimator.prepare(params)
    ledger = PrivacyLedger(1e-5)
    release = PrivateRelease(L2Clipper(BoundOptions(bound=1.0)), GaussianNoise(GaussianNoise.Options()), 1.0, 0.1,
                             estimator, 5.0, SecretStream(), ledger)
    with torch.inference_mode():
        for step in (1, 2):
            measured = estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed=step)
            released = release.privatize(measured)
            estimator.update(params, step, released.coefficients, UpdateContext(step, 1e-3, 0.0))
    changed = {name for name, p in adapter.model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.endswith("bias") for name in changed)
    assert ledger.steps == 2 and len(ledger.events) == 1 and release.scale == pytest.approx(1.0)


def test_dp_bitfit_refuses_weights(tiny_opt, shared_data):
    adapter = bias_model(tiny_opt, shared_data, trainable="all")
    with pytest.raises(BadInput, match="bias terms only"):
        DPBitFit(BitFitOptions()).prepare(adapter.trainable())


def test_dp_bitfit_runs_from_a_recipe(tiny_opt, shared_data, tmp_path):
    result = CliRunner().invoke(app, [
        "run", "recipes/dpzero_opt2.7b_drop.toml", "--json", "--out", str(tmp_path / "run"),
        "--set", 'estimator={name = "dp_bitfit", optimizer = "adam"}', "--set", 'clipper={name = "l2", bound = 1.0}',
        "--set", f"model.path={tiny_opt}", "--set", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}",
        "--set", "model.device=cpu", "--set", "model.dtype=float32", "--set", "model.max_length=256",
        "--set", 'model.trainable="bias"', "--set", f"task.path={shared_data / 'drop' / 'drop_train_sample.json'}",
        "--set", "task.n_train=32", "--set", "task.n_eval=4", "--set", "task.held_out_public=true",
        "--set", "train.steps=4", "--set", "train.lr=1e-3", "--set", "train.eval_every=0",
        "--set", "privacy.accountant=rdp", "--set", 'privacy.report=["rdp"]'])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["steps"] == 4


def test_adam_settings_with_sgd_are_refused():
    with pytest.raises(BadInput, match="estimator.eps"):
        DPBitFit(BitFitOptions(eps=1e-6)).check()
    DPBitFit(BitFitOptions(optimizer="adam", eps=1e-6)).check()
