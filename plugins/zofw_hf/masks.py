"""Attention masks prepared on the device, in the 4-D form the model's attention takes.

Why: given a 2-D padding mask, transformers builds the 4-D mask itself, and on the way inspects it
(``padding_mask.all()`` to choose the unmasked fast path, packed-sequence detection): each of those reads
a value back from the GPU, so the host stalls and the GPU idles, several times per forward. And the
kernel it then picks depends on whether *any* row of the forward is padded, so one example's padding
would change the rounding of every other example's loss (a batch dependence, see ``zofw.batching``).
A prepared mask is built without a read-back, and every forward of a shape takes the same kernel.

Only architectures whose forward takes a prepared mask as its own would build it are listed:
``tests/plugins/test_architectures.py`` checks each against the 2-D path. Others (ALiBi models build
their biases from the 2-D mask; sliding-window models need a mask per layer type) keep the 2-D path.
"""

from __future__ import annotations

from typing import Any

import torch

CAUSAL_TYPES = frozenset({"opt", "gpt2", "llama", "qwen2", "gemma", "gpt_neox", "phi"})
BIDIRECTIONAL_TYPES = frozenset({"roberta", "xlm-roberta", "bert", "electra"})
_CAUSAL: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}  # (L, L) triangle and diagonal, by width, device


def takes_prepared(model: Any, causal: bool) -> bool:
    """Whether ``model`` (a transformers model) gets a prepared 4-D mask from :func:`attention_mask`."""
    config = getattr(model, "config", None)
    kinds = CAUSAL_TYPES if causal else BIDIRECTIONAL_TYPES
    # sdpa takes a boolean mask, eager an additive one; flash and flex attention have masks of their own kind
    return (config is not None and config.model_type in kinds
            and getattr(config, "_attn_implementation", None) in ("sdpa", "eager")
            and getattr(config, "sliding_window", None) is None)


def attention_mask(model: Any, padding: torch.Tensor, causal: bool) -> torch.Tensor:
    """The prepared (b, 1, L, L) mask for the padding mask (b, L) (1: a real token), for a model that
    :func:`takes_prepared`: boolean for sdpa, additive for eager attention."""
    width = padding.shape[1]
    keys = padding.bool()[:, None, None, :]  # (b, 1, 1, L): which keys each row may attend to
    if causal:
        key = (width, str(padding.device))
        if key not in _CAUSAL:
            ones = torch.ones(width, width, dtype=torch.bool, device=padding.device)
            _CAUSAL[key] = ones.tril(), ones.tril().triu()
        triangle, diagonal = _CAUSAL[key]
        # A left-padding query sees no real key before it: it may see itself (its output is never scored),
        # so no row of the softmax is empty. Real queries see exactly the real keys up to themselves.
        keep = (keys & triangle) | diagonal
    else:
        keep = keys.expand(-1, 1, width, -1)  # a dummy row's one real-marked pad token keeps its rows non-empty
    keep = keep.contiguous()
    if model.config._attn_implementation == "sdpa":
        return keep
    dtype = model.dtype
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill_(~keep, torch.finfo(dtype).min)
