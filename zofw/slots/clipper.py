"""Clipping rules: bound each example's contribution so the sum has a known sensitivity."""

from __future__ import annotations

from typing import Literal

import torch

from zofw.slots.base import Component


class Clipper(Component):
    """Base class of per-example clipping rules. Options must include ``bound`` (C).

    Neighbouring relation: add/remove one example. ``sensitivity`` is how far the sum of clipped rows
    can move when one row is added or removed; the release calibrates the noise to it.
    """

    def clip(self, values: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Clip each row (last dimension, width K) of finite ``values`` at the bound C·scale."""
        raise NotImplementedError

    def sensitivity(self, dims: int, norm: Literal["l1", "l2"] = "l2") -> float:
        """Sensitivity in ``norm`` of the sum of clipped rows of width ``dims`` under add/remove-one."""
        raise NotImplementedError
