"""On a GPU the loss forwards of a training step replay captured CUDA graphs, with the eager path's bits.

Captured forwards read the step's seeds, step sizes and released coefficients from device buffers, and
the pending update is fused into the first probe's graph: so the test runs several deferred DPZero steps
(batches of two public widths, two microbatches per probe) with graphs and without, and compares every
per-example value, every weight after the steps, and a final forward, bit for bit. gpu_checks.sh runs it.
"""

from __future__ import annotations

import pytest
import torch

from zofw.directions import stream_seed
from zofw.evaluate import per_example_losses
from zofw.privacy.release import NoPrivacy
from zofw.slots.estimator import UpdateContext
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM
from zofw_zo.estimators import DPZero, SmoothingOptions

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def adapter_and_items(kind: str, graphs: bool, tiny_opt, tiny_roberta, shared_data, dtype: str):
    if kind == "causal":
        adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                            device="cuda", dtype=dtype, max_length=64, cuda_graphs=graphs))
        adapter.load("generation")
        examples = [Example(f"Passage: {'word ' * (3 * i)}.\nQuestion: which?\nAnswer:", (f" {i}\n",))
                    for i in range(6)]
    else:
        adapter = MaskedLM(MaskedLM.Options(path=str(tiny_roberta), tokenizer=str(shared_data / "tokenizers" / "roberta"),
                                            device="cuda", dtype=dtype, max_length=64, cuda_graphs=graphs))
        adapter.load("classification")
        examples = [Example(f"{'fine ' * (4 * i)}day.", (" great",), (" great", " terrible"), i % 2, " It was")
                    for i in range(6)]
    return adapter, adapter.encode(examples)


def run_steps(adapter, items, steps: int = 6):
    params = adapter.trainable()
    initial = [p.detach().clone() for p in adapter.model.parameters()]
    estimator = DPZero(SmoothingOptions())
    release = NoPrivacy(float(len(items)), estimator.directions())
    seen = []
    with params.deferred_updates():
        for t in range(1, steps + 1):
            seed = stream_seed(0, t)
            with torch.inference_mode():
                measured = estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed)
                released = release.privatize(measured)
                estimator.update(params, seed, released.coefficients, UpdateContext(t, 0.05, 0.0))
            seen.append(measured.values.clone())
    with torch.inference_mode():
        final = per_example_losses(adapter, items, 4)
    weights = [p.detach().clone() for p in adapter.model.parameters()]
    return seen, weights, final, any(not torch.equal(a, b) for a, b in zip(initial, weights))


@needs_cuda
@pytest.mark.parametrize("kind,dtype", [("causal", "float16"), ("causal", "bfloat16"), ("masked", "float16")])
def test_graphed_steps_give_the_eager_steps_bits(kind, dtype, tiny_opt, tiny_roberta, shared_data) -> None:
    eager_adapter, items = adapter_and_items(kind, False, tiny_opt, tiny_roberta, shared_data, dtype)
    assert eager_adapter._graphs is None
    eager = run_steps(eager_adapter, items)
    graphed_adapter, items = adapter_and_items(kind, True, tiny_opt, tiny_roberta, shared_data, dtype)
    graphed = run_steps(graphed_adapter, items)
    graphs = graphed_adapter._graphs
    assert graphs.captures >= 2 and graphs.replays >= 8, (graphs.captures, graphs.replays)
    for step, (a, b) in enumerate(zip(eager[0], graphed[0])):
        assert torch.equal(a, b), f"step {step + 1}: per-example values differ"
    for a, b in zip(eager[1], graphed[1]):
        assert torch.equal(a, b)
    assert graphed[3], "the steps did not move the weights"
    assert torch.equal(eager[2], graphed[2])


@needs_cuda
def test_parameters_with_new_storage_are_never_read_from_an_old_graph(tiny_opt, shared_data) -> None:
    """``p.data = …`` (the MeZO reference's update) moves a parameter: the graph key changes, the forward
    sees the new values."""
    adapter, items = adapter_and_items("causal", True, tiny_opt, None, shared_data, "float16")
    with torch.inference_mode():
        for _ in range(3):  # captured on the second forward, replayed on the third
            before = per_example_losses(adapter, items, 4)
        assert adapter._graphs.replays >= 1
        for parameter in adapter.model.parameters():
            parameter.data = parameter.data * 2.0  # exact (no overflow at these magnitudes)
        after = per_example_losses(adapter, items, 4)
        assert not torch.equal(before, after)
        for parameter in adapter.model.parameters():
            parameter.data = parameter.data * 0.5  # exact after a doubling (halving alone drops subnormal bits)
        assert torch.equal(per_example_losses(adapter, items, 4), before)


def test_the_option_is_checked_and_a_cpu_run_never_captures(tiny_opt, shared_data) -> None:
    from pydantic import ValidationError

    for value in ("auto", True, False):
        adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                            device="cpu", cuda_graphs=value))
        adapter.load("generation")
        assert adapter._graphs is None  # graphs are a CUDA feature
    with pytest.raises(ValidationError):
        CausalLM.Options(path=str(tiny_opt), cuda_graphs="sometimes")
