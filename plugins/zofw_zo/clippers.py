"""Per-example clipping rules. Neighbouring relation: add/remove one example.

Each rule's sensitivity is stated where the rule is defined, in both norms the noise mechanisms use;
``tests/privacy/test_release.py`` checks the statements empirically (add one extreme, NaN or inf row and
measure how far the clipped sum moves).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from zofw.slots.base import Options
from zofw.slots.clipper import Clipper


class BoundOptions(Options):
    bound: float = Field(gt=0, allow_inf_nan=False)  # C; DPZero searches {50, …, 400} (RoBERTa), {10, …, 200} (OPT)


class ScalarClipper(Clipper):
    """Clamp each value to [−C, C] (DPZero); with K values the sum's L2 sensitivity is C·√K, L1 C·K."""

    name = "scalar"
    Options = BoundOptions

    def clip(self, values: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        bound = self.options.bound * scale
        return values.clamp(-bound, bound)

    def sensitivity(self, dims: int, norm: Literal["l1", "l2"] = "l2") -> float:
        # one row moves each of the K coordinates of the sum by at most C
        return self.options.bound * (dims if norm == "l1" else math.sqrt(dims))


class L2Clipper(Clipper):
    """Scale each example's K-vector to L2 norm at most C (multi-direction DPZero); L2 sensitivity C, L1 C·√K."""

    name = "l2"
    Options = BoundOptions

    def clip(self, values: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        bound = self.options.bound * scale
        norms = torch.linalg.vector_norm(values, dim=-1, keepdim=True)
        return values * (bound / norms.clamp_min(bound))  # factor 1 inside the ball

    def sensitivity(self, dims: int, norm: Literal["l1", "l2"] = "l2") -> float:
        # a vector of L2 norm C has L1 norm at most C·√K
        return self.options.bound * (math.sqrt(dims) if norm == "l1" else 1.0)
