"""Applying released steps to the weights: the estimator's update, the schedule's λ and proximal pull.

One implementation for training and for replaying a seed log, so that a replay takes exactly the
steps the run took.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from zofw.params import TrainableParams
from zofw.slots.estimator import Estimator, UpdateContext
from zofw.slots.schedule import Schedule, StepPlan


class Updater:
    def __init__(self, params: TrainableParams, estimator: Estimator, schedule: Schedule, steps: int,
                 weight_decay: float) -> None:
        self.params, self.estimator, self.schedule = params, estimator, schedule
        self.steps, self.weight_decay = steps, weight_decay
        self.anchor: Optional[list[torch.Tensor]] = None  # θ at the start of the schedule's stage (proximal pull)

    def plan(self, step: int) -> StepPlan:
        """The schedule's settings of ``step`` (public); sets the estimator's λ and takes the stage's anchor
        where a stage starts."""
        plan = self.schedule.plan(step, self.steps)
        self.estimator.smoothing_factor = plan.smoothing_factor
        if plan.proximal and (plan.new_anchor or self.anchor is None):
            self.anchor = self.params.snapshot()
        return plan

    def apply(self, step: int, seed: int, plan: StepPlan, lr: float, coefficients: torch.Tensor,
              parameter_noise: Any = None) -> None:
        """θ ← θ − η·(Σ_k c_k·u_k + wd·θ), then the proximal pull θ ← θ − η·μ·(θ − θ_anchor)."""
        self.estimator.update(self.params, seed, coefficients,
                              UpdateContext(step, lr, self.weight_decay, parameter_noise))
        if plan.proximal and self.anchor is not None:  # post-processing of released values: no privacy cost
            self.params.pull_toward_(self.anchor, lr * plan.proximal)
