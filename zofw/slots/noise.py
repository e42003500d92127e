"""Noise mechanisms: the randomness that makes a released sum private."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from zofw.privacy.secure import SecretStream
from zofw.slots.base import Component


class Noise(Component):
    """Base class of noise mechanisms.

    A mechanism states which norm its scale is relative to (``sensitivity_norm``): the release asks the
    clipper for the sensitivity in that norm, so the noise scale is σ × that sensitivity, and the ledger
    records σ for an accountant that composes ``mechanism`` events measured the same way.
    """

    # The mechanism's name in the privacy ledger; accountants look it up to compose it.
    mechanism: ClassVar[str]
    # The norm of the sensitivity that the scale is a multiple of: L2 for Gaussian, L1 for Laplace.
    sensitivity_norm: ClassVar[Literal["l1", "l2"]] = "l2"

    def sample(self, shape: tuple[int, ...], scale: float, source: SecretStream) -> torch.Tensor:
        """float64 noise of ``shape`` at ``scale`` = noise multiplier × sensitivity, from the secure source."""
        raise NotImplementedError

    def sample_like(self, like: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
        """Bulk noise shaped, typed and placed like ``like`` (d-dimensional, for DPGD-0th), from a
        generator keyed by the secure source. Mechanisms that cannot do this leave it unimplemented."""
        raise NotImplementedError(f"noise '{self.name}' cannot be added to parameters")
