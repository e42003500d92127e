"""The trainable subset of a model's parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

# Weight decay is not applied to biases and normalisation weights (as in MeZO and DPZero).
_NO_DECAY = re.compile(r"(^|\.)bias$|layer_?norm|LayerNorm|\bln\b|norm\.weight$")


@dataclass
class TrainableParams:
    """Named tensors an estimator perturbs in place, in a fixed order (the order seeds depend on)."""

    names: list[str]
    tensors: list[torch.Tensor]
    decay: list[bool] = field(init=False)  # whether weight decay applies, per tensor (fixed once)

    def __post_init__(self) -> None:
        self.decay = [not _NO_DECAY.search(n) for n in self.names]

    @classmethod
    def select(cls, module: torch.nn.Module, pattern: str) -> "TrainableParams":
        """Parameters whose name matches ``pattern``: "all", "bias" or a regular expression."""
        regex = {"all": r".*", "bias": r"(^|\.)bias$"}.get(pattern, pattern)
        chosen = [(n, p) for n, p in module.named_parameters() if re.search(regex, n)]
        return cls([n for n, _ in chosen], [p.data for _, p in chosen])

    def numel(self) -> int:
        return sum(t.numel() for t in self.tensors)
