"""A probe forms the perturbed rows an embedding looks up, and the vocabulary rows a masked-LM head scores,
never the whole (tied) table: the losses are those of θ + λu written into the model, and no pass of the
probe is as large as the table. On the GPU the same code runs with the kernels (gpu_checks.sh)."""

from __future__ import annotations

import os

import torch

from zofw import kernels
from zofw.directions import iter_direction, perturbed
from zofw.evaluate import per_example_losses
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM

DEVICE = os.environ.get("ZOFW_TEST_DEVICE", "cpu")


def probe_and_twin(adapter, items, alpha: float = 1e-2):
    """Losses inside a probe, the sizes of the passes the probe made, and the losses with θ + λu written in."""
    params = adapter.trainable()
    sizes, original = [], kernels.axpy_directions_

    def recording(dst, *args, **kwargs):
        sizes.append(dst.numel())
        return original(dst, *args, **kwargs)

    kernels.axpy_directions_ = recording
    try:
        with torch.inference_mode(), perturbed(params, 7, alpha):
            probed = per_example_losses(adapter, items, 8)
    finally:
        kernels.axpy_directions_ = original
    with torch.inference_mode():
        for _, tensor, u in iter_direction(params, 7):
            tensor.add_(u.to(tensor.dtype), alpha=alpha)
        written = per_example_losses(adapter, items, 8)
    return probed, sizes, written


def test_a_masked_lm_probe_never_forms_its_tied_embedding(tiny_roberta, shared_data) -> None:
    adapter = MaskedLM(MaskedLM.Options(path=str(tiny_roberta), tokenizer=str(shared_data / "tokenizers" / "roberta"),
                                        device=DEVICE, dtype="float32", max_length=64))
    adapter.load("classification")
    items = adapter.encode([Example(f"{'fine ' * (2 * i)}day.", (" great",), (" great", " terrible"), i % 2,
                                    " It was") for i in range(6)])
    table = adapter.model.get_input_embeddings().weight.numel()
    probed, sizes, written = probe_and_twin(adapter, items)
    assert max(sizes) < table  # neither the lookup nor the head formed the (vocabulary × width) matrix
    torch.testing.assert_close(probed, written, rtol=0, atol=1e-5)


def test_a_causal_lm_probe_looks_up_rows_and_forms_its_tied_head_once(tiny_opt, shared_data) -> None:
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                        device=DEVICE, dtype="float32", max_length=64))
    adapter.load("generation")
    items = adapter.encode([Example(f"Passage: item {i}.\nQuestion: which?\nAnswer:", (f" {i}\n",))
                            for i in range(6)])  # one length: one forward
    table = adapter.model.get_input_embeddings().weight.numel()
    probed, sizes, written = probe_and_twin(adapter, items)
    torch.testing.assert_close(probed, written, rtol=0, atol=1e-5)
    assert sizes.count(table) == 1  # the tied head forms the table; the lookup took its rows only
