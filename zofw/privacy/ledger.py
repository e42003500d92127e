"""The privacy ledger: every data-dependent release of a run, from which ε is always recomputed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from zofw.rundir import atomic_write_text


@dataclass(frozen=True)
class PrivacyEvent:
    """``steps`` identical releases of a Poisson-subsampled noise mechanism."""

    mechanism: str  # e.g. "gaussian": the noise added to the released sum
    noise_multiplier: float  # noise scale ÷ L2 sensitivity of the released sum
    sample_rate: float  # q: each example joins a batch independently with this probability
    steps: int = 1
    neighbouring: str = "add/remove-one"  # the relation the sensitivity was computed under
    sensitivity: Optional[int] = None  # grid mechanisms (discrete Gaussian): sensitivity in grid units

    def same_mechanism(self, other: "PrivacyEvent") -> bool:
        return replace(self, steps=0) == replace(other, steps=0)


class PrivacyLedger:
    """Run-length encoded list of privacy events, saved as JSON beside a run."""

    def __init__(self, delta: float, events: list[PrivacyEvent] | None = None) -> None:
        self.delta = delta
        self.events: list[PrivacyEvent] = list(events or [])

    def record(self, event: PrivacyEvent) -> None:
        if self.events and self.events[-1].same_mechanism(event):
            last = self.events[-1]
            self.events[-1] = replace(last, steps=last.steps + event.steps)
        else:
            self.events.append(event)

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.events)

    def to_json(self) -> str:
        return json.dumps({"delta": self.delta, "events": [asdict(e) for e in self.events]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "PrivacyLedger":
        data = json.loads(text)
        return cls(data["delta"], [PrivacyEvent(**e) for e in data["events"]])

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.to_json())
