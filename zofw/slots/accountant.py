"""Privacy accountants: ε spent by the events of a privacy ledger."""

from __future__ import annotations

from typing import Sequence

from zofw.privacy.ledger import PrivacyEvent
from zofw.slots.base import Component


class Accountant(Component):
    """Base class of privacy accountants."""

    def epsilon(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        """ε at ``delta`` of the composition of ``events`` (an upper bound where the method gives one)."""
        raise NotImplementedError
