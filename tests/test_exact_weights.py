"""The probe never writes θ: after a step with lr = 0 the weights are bitwise equal, in fp16 and bf16."""

from __future__ import annotations

import os

import pytest
import torch

from zofw.directions import iter_direction, perturbed
from zofw.evaluate import per_example_losses
from zofw.slots.estimator import UpdateContext
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_zo.estimators import DPZero, SmoothingOptions

DEVICE = os.environ.get("ZOFW_TEST_DEVICE", "cpu")  # scripts/gpu_checks.sh runs these on cuda
EXAMPLES = [Example(f"Passage: item {i}.\nQuestion: which?\nAnswer:", (f" {i}\n",)) for i in range(4)]


def load(tiny_opt, shared_data, dtype, trainable="all"):
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                        device=DEVICE, dtype=dtype, max_length=128, trainable=trainable))
    adapter.load("generation")
    return adapter


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_step_with_lr_zero_leaves_every_weight_bitwise_equal(tiny_opt, shared_data, dtype):
    adapter = load(tiny_opt, shared_data, dtype)
    params, items = adapter.trainable(), adapter.encode(EXAMPLES)
    before = {name: p.detach().clone() for name, p in adapter.model.named_parameters()}
    estimator = DPZero(SmoothingOptions())
    for step in range(3):
        measured = estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed=step)
        assert torch.isfinite(measured.values).all() and measured.values.abs().sum() > 0
        estimator.update(params, step, torch.tensor([5.0]), UpdateContext(step + 1, 0.0, 0.0))
    for name, p in adapter.model.named_parameters():
        assert torch.equal(p, before[name]), name


def test_forwards_inside_perturbed_see_theta_plus_lambda_u(tiny_opt, shared_data):
    adapter = load(tiny_opt, shared_data, "float32")
    params, items = adapter.trainable(), adapter.encode(EXAMPLES)
    with perturbed(params, 7, 1e-2):
        just_in_time = per_example_losses(adapter, items, 4)
    for _, tensor, u in iter_direction(params, 7):
        tensor.add_(u, alpha=1e-2)  # the same perturbation, written into θ
    torch.testing.assert_close(just_in_time, per_example_losses(adapter, items, 4), rtol=0, atol=1e-6)


def test_a_trainable_subset_leaves_every_other_tensor_bitwise_unchanged(tiny_opt, shared_data):
    adapter = load(tiny_opt, shared_data, "bfloat16", trainable="bias")
    params, items = adapter.trainable(), adapter.encode(EXAMPLES)
    before = {name: p.detach().clone() for name, p in adapter.model.named_parameters()}
    estimator = DPZero(SmoothingOptions())
    estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed=1)
    estimator.update(params, 1, torch.tensor([50.0]), UpdateContext(1, 1e-2, 0.0))
    changed = {name for name, p in adapter.model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.endswith("bias") for name in changed)


def test_stochastic_rounding_keeps_updates_below_half_an_ulp(tiny_opt, shared_data):
    adapter = load(tiny_opt, shared_data, "bfloat16", trainable="bias")
    params = adapter.trainable()
    params.flat.fill_(1.0)  # ulp of bf16 at 1.0 is 2^-7: an update of 1e-4 is far below half of it
    start = params.flat.clone()
    estimator = DPZero(SmoothingOptions())
    for step in range(20):  # η·ĝ·u ≈ 1e-4
        estimator.update(params, step, torch.tensor([1e-2]), UpdateContext(step + 1, 1e-2, 0.0))
    assert int((params.flat != start).sum()) > params.numel() // 10
    nearest = DPZero(SmoothingOptions(stochastic_rounding=False))
    params.flat.copy_(start)
    for step in range(20):
        nearest.update(params, step, torch.tensor([1e-2]), UpdateContext(step + 1, 1e-2, 0.0))
    moved_nearest = int((params.flat != start).sum())
    assert moved_nearest < params.numel() // 10  # round-to-nearest loses most of those updates
