"""Privacy accountants: ε spent by the events of a privacy ledger."""

from __future__ import annotations

from typing import ClassVar, Sequence

from zofw.privacy.ledger import PrivacyEvent
from zofw.slots.base import Component


class Accountant(Component):
    """Base class of privacy accountants."""

    # The ledger mechanisms (``Noise.mechanism``) it can compose, Poisson-subsampled: a recipe whose noise
    # is not among them is refused before anything runs, and ``epsilon`` refuses such events too.
    mechanisms: ClassVar[tuple[str, ...]] = ("gaussian",)
    # Whether ``epsilon`` is an upper bound on the true ε. Only upper bounds may calibrate σ; an
    # approximation (e.g. a central-limit estimate) is marked as such wherever its ε is shown.
    upper_bound: ClassVar[bool] = True

    def epsilon(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        """ε at ``delta`` of the composition of ``events`` (an upper bound where the method gives one)."""
        raise NotImplementedError
