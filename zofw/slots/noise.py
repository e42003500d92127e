"""Noise mechanisms: the randomness that makes a released sum private."""

from __future__ import annotations

from typing import ClassVar, Literal, Optional

import torch

from zofw.privacy.ledger import PrivacyEvent
from zofw.privacy.secure import SecretStream
from zofw.sampling import Sampling
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
    # The most released values per step it can privatise (None: any K); the release refuses more.
    max_dims: ClassVar[Optional[int]] = None

    def add_to(self, total: torch.Tensor, multiplier: float, sensitivity: float, source: SecretStream) -> torch.Tensor:
        """The released value: ``total`` (the clipped sum, sensitivity ``sensitivity``) plus noise at
        ``multiplier`` × sensitivity. A mechanism that must see the sum (to round it onto a grid) overrides this."""
        from zofw.batching import on_device

        return total + on_device(self.sample(tuple(total.shape), multiplier * sensitivity, source), total.device)

    def event(self, multiplier: float, sampling: Sampling | float, steps: int = 1,
              dimension: int = 1) -> PrivacyEvent:
        """The ledger event of ``steps`` releases of ``dimension`` values from batches drawn as ``sampling``
        says: what the release records and what σ is calibrated against (one construction for both)."""
        sampling = Sampling.coerce(sampling)  # a bare rate q: Poisson sampling at q
        return PrivacyEvent(self.mechanism, multiplier, sampling.sample_rate, steps, sampling.neighbouring,
                            self.ledger_sensitivity(), sampling.scheme,
                            sampling.dataset_size if sampling.scheme == "fixed_size" else None, dimension,
                            self.sensitivity_norm)

    def ledger_sensitivity(self) -> Optional[int]:
        """For mechanisms on an integer grid: the sensitivity in grid units, which the ledger records
        because their privacy depends on it and not only on the noise multiplier. None otherwise."""
        return None

    def sample(self, shape: tuple[int, ...], scale: float, source: SecretStream) -> torch.Tensor:
        """float64 noise of ``shape`` at ``scale`` = noise multiplier × sensitivity, from the secure source."""
        raise NotImplementedError

    def sample_like(self, like: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
        """Bulk noise shaped, typed and placed like ``like`` (d-dimensional, for DPGD-0th), from a
        generator keyed by the secure source. Mechanisms that cannot do this leave it unimplemented."""
        raise NotImplementedError(f"noise '{self.name}' cannot be added to parameters")
