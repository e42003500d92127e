"""The privacy ledger: every data-dependent release of a run, from which ε is always recomputed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from zofw.rundir import atomic_write_text


# The norm each mechanism's multiplier is relative to in its standard privacy analysis.
NORM_OF_MECHANISM = {"gaussian": "l2", "discrete_gaussian": "l2", "laplace": "l1"}


@dataclass(frozen=True)
class PrivacyEvent:
    """``steps`` identical releases of a subsampled noise mechanism, with everything an accountant needs
    to check that it can compose them (mechanism, norm, sampling scheme, relation, dimension)."""

    mechanism: str  # e.g. "gaussian": the noise added to the released sum
    noise_multiplier: float  # noise scale ÷ the released sum's sensitivity in ``sensitivity_norm``
    sample_rate: float  # q = E|B| / n
    steps: int = 1
    neighbouring: str = "add/remove-one"  # the relation the sensitivity was computed under
    sensitivity: Optional[int] = None  # grid mechanisms (discrete Gaussian): sensitivity in grid units
    sampling: str = "poisson"  # "poisson" (independent coins) or "fixed_size" (b drawn without replacement)
    dataset_size: Optional[int] = None  # n, for fixed-size sampling (its accountant needs n and b)
    dimension: int = 1  # values released per step (K; d for noise added to the parameters)
    sensitivity_norm: Optional[str] = None  # the norm the multiplier is relative to; None: the mechanism's own

    def __post_init__(self) -> None:
        if self.sensitivity_norm is None:  # frozen: set once, here
            object.__setattr__(self, "sensitivity_norm", NORM_OF_MECHANISM.get(self.mechanism, "l2"))

    def describe(self) -> str:
        return (f"a {self.mechanism} event ({self.sensitivity_norm} sensitivity, {self.sampling} sampling, "
                f"{self.neighbouring})")

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

    def truncate(self, steps: int) -> None:
        """Keep the first ``steps`` releases (a resumed run retakes the later ones)."""
        kept, left = [], steps
        for event in self.events:
            if left <= 0:
                break
            kept.append(replace(event, steps=min(event.steps, left)))
            left -= kept[-1].steps
        self.events = kept

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.events)

    def to_json(self) -> str:
        return json.dumps({"delta": self.delta, "events": [asdict(e) for e in self.events]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "PrivacyLedger":
        data = json.loads(text)
        return cls(data["delta"], [PrivacyEvent(**e) for e in data["events"]])

    @classmethod
    def load(cls, path: Path) -> "PrivacyLedger":
        """A ledger file, or one line naming it (strict JSON: no NaN, no deep nesting, the right fields)."""
        from zofw.errors import BadInput
        from zofw.rundir import read_json

        data = read_json(path, "privacy ledger")
        try:
            ledger = cls(float(data["delta"]), [PrivacyEvent(**e) for e in data["events"]])
        except (KeyError, TypeError, ValueError) as error:
            raise BadInput(f"{path}: not a privacy ledger ({type(error).__name__}: {error})") from None
        if not 0 < ledger.delta < 1 or any(e.steps < 1 or not e.noise_multiplier > 0 or not 0 < e.sample_rate <= 1
                                           for e in ledger.events):
            raise BadInput(f"{path}: not a privacy ledger (a value out of range)")
        return ledger

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.to_json())
