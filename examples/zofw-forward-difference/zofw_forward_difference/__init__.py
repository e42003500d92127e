"""A one-sided zeroth-order estimator, registered through zofw's public hooks only."""

from __future__ import annotations

import torch
from pydantic import Field

from zofw import hookimpl
from zofw.directions import iter_direction, perturb_
from zofw.params import TrainableParams
from zofw.slots.base import Options
from zofw.slots.estimator import Estimator, LossFn, PerExample, UpdateContext


class ForwardDifferenceOptions(Options):
    smoothing: float = Field(1e-3, gt=0)  # λ


class ForwardDifference(Estimator):
    """One-sided differences (f(θ+λu) − f(θ)) / λ per example; private like DPZero."""

    name = "forward_difference"
    Options = ForwardDifferenceOptions

    def per_example(self, params: TrainableParams, losses: LossFn, seed: int) -> PerExample:
        base = losses()
        perturb_(params, seed, self.options.smoothing)
        shifted = losses()
        return PerExample(values=((shifted - base).float() / self.options.smoothing).unsqueeze(1), loss=base)

    def update(self, params: TrainableParams, seed: int, coefficients: torch.Tensor,
               context: UpdateContext) -> None:
        lr, weight_decay = context.lr, context.weight_decay
        step = lr * float(coefficients[0])
        for (_, tensor, z), decays in zip(iter_direction(params, seed), params.decay):
            tensor.add_(z, alpha=-self.options.smoothing)  # back to θ
            if decays and weight_decay:
                tensor.mul_(1 - lr * weight_decay)
            tensor.add_(z, alpha=-step)


@hookimpl
def register_estimators(register):
    register(ForwardDifference)
