"""ε so far, at every log record, for the price of one accounting pass before the run.

A run releases the same event at every step (σ, q, the mechanism and the sampling are fixed before the
first step), so ε after t steps is a function of t alone: the accountant's ``curve`` computes it once
for the steps at which the run will log. At a log record the loop checks that the ledger really holds
t copies of that event; anything else (a ledger that changed mechanism) is accounted exactly instead.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from zofw.privacy.ledger import PrivacyEvent, PrivacyLedger
from zofw.slots.accountant import Accountant


class RunningEpsilon:
    def __init__(self, accountant: Accountant, event: PrivacyEvent, delta: float, marks: Sequence[int]) -> None:
        self.accountant, self.event, self.delta = accountant, replace(event, steps=1), delta
        marks = sorted(set(marks))
        self.at = dict(zip(marks, accountant.curve(self.event, marks, delta))) if marks else {}

    def after(self, ledger: PrivacyLedger) -> float:
        """ε spent by ``ledger``: from the curve when it holds the planned event at a planned count."""
        steps = ledger.steps
        planned = len(ledger.events) == 1 and ledger.events[0].same_mechanism(self.event)
        if planned and steps in self.at:
            return self.at[steps]
        return self.accountant.epsilon(ledger.events, ledger.delta)


def log_marks(steps: int, log_every: int) -> list[int]:
    """The steps at which a run of ``steps`` steps writes a metrics record."""
    return sorted(set(range(log_every, steps + 1, log_every)) | {steps})
