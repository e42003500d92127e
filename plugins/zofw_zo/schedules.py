"""Schedules: constant, linear and cosine decay, and the stagewise schedule of DP-ZOSO (NDSS 2025)."""

from __future__ import annotations

import math

from pydantic import Field

from zofw.slots.base import Options
from zofw.slots.schedule import Schedule, StepPlan


class Constant(Schedule):
    """The recipe's step size and the estimator's λ at every step."""

    name = "constant"

    def plan(self, step: int, steps: int) -> StepPlan:
        return StepPlan()


class DecayOptions(Options):
    final_lr: float = Field(0.0, ge=0, le=1)  # η at the last step, as a fraction of train.lr
    final_smoothing: float = Field(1.0, gt=0, le=1)  # λ at the last step, as a fraction of the estimator's λ


class _Decay(Schedule):
    """Both factors move from 1 at the first step to their final value at the last, along ``shape``."""

    Options = DecayOptions
    options: DecayOptions

    def shape(self, progress: float) -> float:
        """1 at progress 0, 0 at progress 1."""
        raise NotImplementedError

    def plan(self, step: int, steps: int) -> StepPlan:
        left = self.shape((step - 1) / (steps - 1) if steps > 1 else 0.0)
        final_lr, final_smoothing = self.options.final_lr, self.options.final_smoothing
        return StepPlan(lr_factor=final_lr + (1 - final_lr) * left,
                        smoothing_factor=final_smoothing + (1 - final_smoothing) * left)

    def changes_smoothing(self) -> bool:
        return self.options.final_smoothing != 1.0


class Linear(_Decay):
    """Linear decay from the recipe's values to ``final_lr`` (and ``final_smoothing``) at the last step."""

    name = "linear"

    def shape(self, progress: float) -> float:
        return 1.0 - progress


class Cosine(_Decay):
    """Cosine decay (half a period) from the recipe's values to the final fractions at the last step."""

    name = "cosine"

    def shape(self, progress: float) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * progress))


class StagewiseOptions(Options):
    first_stage: int = Field(100, ge=1)  # T0: stage s lasts T0·2^s steps
    lr_decay: float = Field(0.5, gt=0, le=1)  # the step size is multiplied by this at each new stage
    smoothing_decay: float = Field(0.5, gt=0, le=1)  # λ is multiplied by this at each new stage
    # μ ≥ 0: after each update θ ← θ − η·μ·(θ − θ_stage start); costs one copy of the trainable weights
    proximal: float = Field(0.0, ge=0, allow_inf_nan=False)


class Stagewise(Schedule):
    """DP-ZOSO's stages: stage s covers steps T0·(2^s − 1) + 1 … T0·(2^{s+1} − 1); at each stage start the
    step size and λ shrink geometrically and, with ``proximal`` > 0, θ is pulled toward that start."""

    name = "stagewise"
    Options = StagewiseOptions
    options: StagewiseOptions

    def stage(self, step: int) -> int:
        return int(math.floor(math.log2((step - 1) / self.options.first_stage + 1)))

    def plan(self, step: int, steps: int) -> StepPlan:
        stage = self.stage(step)
        starts = self.options.first_stage * (2**stage - 1) + 1
        return StepPlan(lr_factor=self.options.lr_decay**stage, smoothing_factor=self.options.smoothing_decay**stage,
                        proximal=self.options.proximal, new_anchor=step == starts)

    def changes_smoothing(self) -> bool:
        return self.options.smoothing_decay != 1.0
