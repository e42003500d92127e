"""Schedules: the step size and smoothing λ of each step, and an optional proximal pull (DP-ZOSO)."""

from __future__ import annotations

from dataclasses import dataclass

from zofw.slots.base import Component


@dataclass(frozen=True)
class StepPlan:
    """One step's settings. Public: a function of the step number and the run length alone, never of data."""

    lr_factor: float = 1.0  # η_t = train.lr × lr_factor
    smoothing_factor: float = 1.0  # λ_t = the estimator's λ × smoothing_factor
    proximal: float = 0.0  # μ: after the update, θ ← θ − η_t·μ·(θ − θ_anchor)
    new_anchor: bool = False  # θ_anchor ← θ before this step (a stage starts)


class Schedule(Component):
    """Base class of schedules."""

    def plan(self, step: int, steps: int) -> StepPlan:
        """Settings of step ``step`` (1-based) of a run of ``steps`` steps."""
        raise NotImplementedError

    def changes_smoothing(self) -> bool:
        """Whether λ ever differs from the estimator's: then the estimator must follow the schedule."""
        return False
