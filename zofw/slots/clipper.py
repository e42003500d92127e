"""Clipping rules: bound each example's contribution so the sum has a known sensitivity."""

from __future__ import annotations

import torch

from zofw.slots.base import Component


class Clipper(Component):
    """Base class of per-example clipping rules. Options must include ``bound`` (C)."""

    def clip(self, values: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Clip each row of ``values`` (b, K) at the bound C·scale."""
        raise NotImplementedError

    def sensitivity(self, dims: int) -> float:
        """L2 sensitivity of the sum of clipped rows of width ``dims`` under add/remove-one neighbours."""
        raise NotImplementedError
