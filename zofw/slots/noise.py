"""Noise mechanisms: the randomness that makes a released sum private."""

from __future__ import annotations

from typing import ClassVar

import torch

from zofw.slots.base import Component


class Noise(Component):
    """Base class of noise mechanisms."""

    # The mechanism's name in the privacy ledger; accountants look it up to compose it.
    mechanism: ClassVar[str]

    def sample(self, like: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
        """Noise shaped, typed and placed like ``like``, at ``scale`` = noise multiplier × sensitivity."""
        raise NotImplementedError
