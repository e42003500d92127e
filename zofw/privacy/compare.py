"""Accountants side by side without training: ε of a planned or finished schedule, σ for a target ε.

Every registered accountant is usable (third-party ones included); each is timed, because the choice
between them is also a choice of seconds per call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from zofw.errors import BadInput
from zofw.privacy.calibrate import calibrate_with
from zofw.privacy.ledger import PrivacyEvent, PrivacyLedger
from zofw.slots.accountant import Accountant


def check_parameters(sampling_rate: Optional[float] = None, noise_multiplier: Optional[float] = None,
                     steps: Optional[int] = None, delta: Optional[float] = None,
                     target_epsilon: Optional[float] = None) -> None:
    """One line, exit 2, for a parameter outside its domain."""
    if sampling_rate is not None and not 0 < sampling_rate <= 1:
        raise BadInput(f"--sampling-rate must be in (0, 1], got {sampling_rate}")
    if noise_multiplier is not None and not noise_multiplier > 0:
        raise BadInput(f"--noise-multiplier must be > 0, got {noise_multiplier}")
    if steps is not None and steps < 1:
        raise BadInput(f"--steps must be ≥ 1, got {steps}")
    if delta is not None and not 0 < delta < 1:
        raise BadInput(f"--delta must be in (0, 1), got {delta}")
    if target_epsilon is not None and not target_epsilon > 0:
        raise BadInput(f"--target-epsilon must be > 0, got {target_epsilon}")


def accountants_for_events(names: Optional[Sequence[str]], events: Sequence[PrivacyEvent]) -> dict[str, Accountant]:
    """The named accountants, each able to compose every event (else the first refusal, in one line), or
    by default every registered accountant that can."""
    from zofw.plugins import registries

    registry = registries()["accountants"]
    built = {entry.component.name: entry.component(entry.component.Options())
             for entry in ([registry.get(name) for name in names] if names else registry)}
    able = {name: accountant for name, accountant in built.items()
            if all(accountant.refusal(event) is None for event in events)}
    if names and len(able) < len(built):
        refused = next(name for name in built if name not in able)
        built[refused].epsilon(events, 1e-5)  # raises the accountant's own one-line refusal
    if not able:
        raise BadInput(f"no registered accountant can compose {events[0].describe()}")
    return able


@dataclass
class Comparison:
    epsilon: dict[str, float]
    seconds: dict[str, float]
    approximations: list[str]  # accountants whose ε is not an upper bound

    def record(self) -> dict:
        return {"epsilon": self.epsilon, "seconds": self.seconds, "approximations": self.approximations}

    def spread(self) -> float:
        finite = [value for value in self.epsilon.values() if math.isfinite(value)]
        return (max(finite) / min(finite) - 1) if len(finite) > 1 and min(finite) > 0 else 0.0


def compare(events: Sequence[PrivacyEvent], delta: float, accountants: dict[str, Accountant]) -> Comparison:
    epsilon, seconds = {}, {}
    for name, accountant in accountants.items():
        start = time.perf_counter()
        epsilon[name] = accountant.epsilon(events, delta)
        seconds[name] = round(time.perf_counter() - start, 4)
    return Comparison(epsilon, seconds, [name for name, a in accountants.items() if not a.upper_bound])


def calibrate(target_epsilon: float, sampling_rate: float, steps: int, delta: float,
              accountants: dict[str, Accountant], mechanism: str = "gaussian",
              progress: Optional[Callable[[str], None]] = None) -> dict[str, float]:
    """σ each accountant needs for ``target_epsilon`` at δ over ``steps`` Poisson-sampled releases."""
    sigmas = {}
    for name, accountant in accountants.items():
        if progress:
            progress(name)
        sigmas[name] = calibrate_with(accountant, lambda s: [PrivacyEvent(mechanism, s, sampling_rate, steps)],
                                      target_epsilon, delta)
    return sigmas


def curve(event: PrivacyEvent, delta: float, accountants: dict[str, Accountant], points: int = 12) -> dict:
    """ε after t steps, t log-spaced up to the event's steps, per accountant (for the plot)."""
    marks = sorted({max(1, round(event.steps ** (k / (points - 1)))) for k in range(points)})
    return {name: [(t, accountant.epsilon([replace(event, steps=t)], delta)) for t in marks]
            for name, accountant in accountants.items()}


def plot_curve(points: dict, path: Path, title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise BadInput("--plot needs matplotlib (pip install -e \".[plot]\")") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, series in points.items():
        axis.plot([t for t, _ in series], [e for _, e in series], marker="o", label=name)
    axis.set(xscale="log", xlabel="steps", ylabel="ε", title=title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def ledger_of(target: Path) -> PrivacyLedger:
    """A finished (or killed) run's ledger: RUN_DIR/privacy_ledger.json."""
    path = target / "privacy_ledger.json" if target.is_dir() else target
    if not path.is_file():
        raise BadInput(f"{target}: no privacy_ledger.json (not a private run directory)")
    return PrivacyLedger.load(path)
