"""Per-example clipping rules. Neighbouring relation: add/remove one example."""

from __future__ import annotations

import math

import torch
from pydantic import Field

from zofw.slots.base import Options
from zofw.slots.clipper import Clipper


class BoundOptions(Options):
    bound: float = Field(gt=0)  # C; DPZero searches {50, …, 400} (RoBERTa) and {10, …, 200} (OPT)


class ScalarClipper(Clipper):
    """Clamp each value to [−C, C] (DPZero); with K values the sum's L2 sensitivity is C·√K."""

    name = "scalar"
    Options = BoundOptions

    def clip(self, values: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        bound = self.options.bound * scale
        return values.clamp(-bound, bound)

    def sensitivity(self, dims: int) -> float:
        return self.options.bound * math.sqrt(dims)


class L2Clipper(Clipper):
    """Scale each example's K-vector to L2 norm at most C (multi-direction DPZero); sensitivity C."""

    name = "l2"
    Options = BoundOptions

    def clip(self, values: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        bound = self.options.bound * scale
        norms = values.norm(dim=1, keepdim=True)
        return values * (bound / norms.clamp_min(bound))  # factor 1 inside the ball

    def sensitivity(self, dims: int) -> float:
        return self.options.bound
