"""Zeroth-order estimators: MeZO's two-point step, DPZero (Algorithm 2) and DPGD-0th (Algorithm 1).

All three share one probe — perturb θ+λu, forward, θ−λu, forward — and one update pass that restores
θ and steps along u at once, so a step makes three passes over the weights (the reference makes four).
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from pydantic import Field

from zofw.directions import iter_direction, perturb_, squared_norm
from zofw.params import TrainableParams
from zofw.slots.base import Options
from zofw.slots.estimator import Estimator, LossFn, ParameterNoise, PerExample, UpdateContext


class SmoothingOptions(Options):
    smoothing: float = Field(1e-3, gt=0)  # λ: MeZO and DPZero use 1e-3
    direction: Literal["gaussian", "sphere"] = "gaussian"  # sphere: u uniform on the radius-√d sphere (paper)


def probe(params: TrainableParams, losses: LossFn, seed: int, smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example central differences (f(θ+λu) − f(θ−λu)) / 2λ and the mean of the two losses.

    Leaves θ at θ − λu: :func:`restore_and_step` finishes the step in the same pass as the update.
    """
    perturb_(params, seed, +smoothing)
    plus = losses()
    perturb_(params, seed, -2 * smoothing)
    minus = losses()
    return (plus - minus).float() / (2 * smoothing), (plus + minus).float() / 2


def restore_and_step(params: TrainableParams, seed: int, smoothing: float, coefficient: float, lr: float,
                     weight_decay: float, parameter_noise: Optional[ParameterNoise]) -> None:
    """From θ − λu: θ ← (θ − λu + λu)(1 − η·wd) − η·coefficient·u − η·noise, one pass per tensor."""
    for (_, tensor, z), decays in zip(iter_direction(params, seed), params.decay):
        shrink = 1 - lr * weight_decay if decays else 1.0
        if shrink != 1.0:
            tensor.mul_(shrink)
        tensor.add_(z, alpha=smoothing * shrink - lr * coefficient)
        if parameter_noise is not None:
            tensor.add_(parameter_noise(tensor), alpha=-lr)


class _CentralDifference(Estimator):
    """Shared probe and update of the single-direction estimators below."""

    Options = SmoothingOptions

    def __init__(self, options: SmoothingOptions) -> None:
        super().__init__(options)
        self._scale: dict[int, float] = {}  # seed -> ‖u‖ scale factor of a sphere direction

    def _direction_scale(self, params: TrainableParams, seed: int) -> float:
        """u = s·z with z ~ N(0, I): s = 1 (Gaussian) or √d/‖z‖ (uniform on the radius-√d sphere)."""
        if self.options.direction == "gaussian":
            return 1.0
        return math.sqrt(params.numel() / squared_norm(params, seed))

    def per_example(self, params: TrainableParams, losses: LossFn, seed: int) -> PerExample:
        scale = self._scale[seed] = self._direction_scale(params, seed)
        differences, mean_loss = probe(params, losses, seed, self.options.smoothing * scale)
        # d_i = (f(θ+λu) − f(θ−λu)) / 2λ with u = s·z: the probe used λ·s along z
        values = (differences * scale).unsqueeze(1)
        return PerExample(values=values, bound_scale=self.bound_scale(params, seed, scale), loss=mean_loss)

    def bound_scale(self, params: TrainableParams, seed: int, scale: float) -> float:
        return 1.0

    def update(self, params: TrainableParams, seed: int, coefficients: torch.Tensor,
               context: UpdateContext) -> None:
        scale = self._scale.pop(seed)
        restore_and_step(params, seed, self.options.smoothing * scale, float(coefficients[0]) * scale,
                         context.lr, context.weight_decay, context.parameter_noise)


class TwoPoint(_CentralDifference):
    """MeZO's two-point (SPSA) estimator along a seeded direction; not private."""

    name = "two_point"
    private = False


class DPZero(_CentralDifference):
    """DPZero: clip each example's directional derivative, privatise one scalar per step."""

    name = "dpzero"


class DPGD0(_CentralDifference):
    """DPGD-0th: clip each example's vector d_i·u to norm C, add d-dimensional noise from a secret seed."""

    name = "dpgd0"
    noise_space = "parameters"

    def bound_scale(self, params: TrainableParams, seed: int, scale: float) -> float:
        # ‖d_i·u‖ = |d_i|·‖u‖ ≤ C  ⇔  |d_i| ≤ C/‖u‖; a sphere direction has ‖u‖ = √d exactly
        norm = math.sqrt(params.numel()) if self.options.direction == "sphere" else math.sqrt(squared_norm(params, seed))
        return 1.0 / norm
