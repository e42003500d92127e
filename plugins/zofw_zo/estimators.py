"""Zeroth-order estimators: MeZO's two-point step, DPZero (Algorithm 2) and DPGD-0th (Algorithm 1).

All three share one probe and one update:
- probe: two forwards that see θ + λu and θ − λu, formed just in time layer by layer
  (``zofw.directions.perturbed``): θ is never written, so the weights stay bitwise exact in fp16/bf16;
- update: ONE fused pass θ ← (1 − η·wd)·θ − η·ĝ·u (− η·noise for DPGD-0th), rounded once, stochastically
  in half precision so that steps below half an ulp are not lost.
Each weight element's direction is regenerated three times per step (two probes, one update).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from zofw.batching import on_device
from zofw.directions import perturb_, perturbed, squared_norm, stream_seed, update_
from zofw.params import TrainableParams
from zofw.slots.base import Options
from zofw.slots.estimator import Estimator, LossFn, PerExample, UpdateContext

_ROUNDING_STREAM = 1 << 40  # stream index of the (public) stochastic-rounding seed of a step

class SmoothingOptions(Options):
    smoothing: float = Field(1e-3, gt=0, allow_inf_nan=False)  # λ: MeZO and DPZero use 1e-3
    direction: Literal["gaussian", "sphere"] = "gaussian"  # sphere: u uniform on the radius-√d sphere (paper)
    # fp16/bf16 weights: round each update stochastically (unbiased), so updates below half an ulp
    # (η·ĝ·u at η = 1e-6 often is) still move θ in expectation instead of vanishing
    stochastic_rounding: bool = True
    # exact: forwards see θ ± λu formed just in time per layer, θ never written (bitwise exact in fp16/bf16,
    # one kernel launch per layer per forward); inplace: θ += λu, θ −= 2λu, then restore fused with the
    # update (three single-launch passes, fastest where launches dominate, but fp16/bf16 round-trip drift)
    perturbation: Literal["exact", "inplace"] = "exact"

def probe(params: TrainableParams, losses: LossFn, seed: int, smoothing: float,
          inplace: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example central differences (f(θ+λu) − f(θ−λu)) / 2λ and the mean of the two losses.

    ``inplace`` leaves θ at θ − λu: the update restores it in the same pass as the step."""
    if inplace:
        perturb_(params, seed, +smoothing)
        plus = losses()
        perturb_(params, seed, -2 * smoothing)
        minus = losses()
    else:
        with perturbed(params, seed, +smoothing):
            plus = losses()
        with perturbed(params, seed, -smoothing):
            minus = losses()
    wide = torch.promote_types(plus.dtype, torch.float32)  # at least fp32: λ-differences are small
    plus, minus = plus.to(wide), minus.to(wide)
    return (plus - minus) / (2 * smoothing), (plus + minus) / 2

def step_along(params: TrainableParams, seed: int, coefficient: float | torch.Tensor, context: UpdateContext,
               stochastic_rounding: bool, displaced: float = 0.0) -> None:
    """θ ← (1 − η·wd)·(θ + displaced·u) − η·coefficient·u(seed) [− η·noise], one fused pass over the weights
    (``displaced``: λ when an in-place probe left θ at θ − λu).

    A tensor ``coefficient`` stays on the device: the kernel reads it there, so the host never waits for
    the GPU inside a step and keeps queueing the next step's work."""
    if isinstance(coefficient, torch.Tensor) and params.tensors:
        coefficient = on_device(coefficient.detach().reshape(()), params.tensors[0].device)
    shrink = [1 - context.lr * context.weight_decay if decays else 1.0 for decays in params.decay]
    if displaced and len(set(shrink)) > 1:  # restore first: weight decay must not shrink the probe's offset
        perturb_(params, seed, displaced)
        displaced = 0.0
    terms = [(seed, displaced * shrink[0] - context.lr * coefficient)]
    if context.parameter_noise is not None:
        key, scale = context.parameter_noise.term(params)
        terms.append((key, -context.lr * scale))
    half = params.tensors and params.tensors[0].dtype in (torch.float16, torch.bfloat16)
    rounding = stream_seed(seed, _ROUNDING_STREAM) if stochastic_rounding and half else None
    update_(params, terms, shrink, rounding)

class _CentralDifference(Estimator):
    """Shared probe and update of the single-direction estimators below."""

    Options = SmoothingOptions
    options: SmoothingOptions

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
        differences, mean_loss = probe(params, losses, seed, self.options.smoothing * scale,
                                       self.options.perturbation == "inplace")
        # d_i = (f(θ+λu) − f(θ−λu)) / 2λ with u = s·z: the probe used λ·s along z
        values = (differences * scale).unsqueeze(1)
        return PerExample(values=values, bound_scale=self.bound_scale(params, seed, scale), loss=mean_loss)

    def bound_scale(self, params: TrainableParams, seed: int, scale: float) -> float:
        return 1.0

    def update(self, params: TrainableParams, seed: int, coefficients: torch.Tensor,
               context: UpdateContext) -> None:
        scale = self._scale.pop(seed, None)
        if scale is None:
            scale = self._direction_scale(params, seed)
        displaced = self.options.smoothing * scale if self.options.perturbation == "inplace" else 0.0
        step_along(params, seed, coefficients[0] * scale, context, self.options.stochastic_rounding, displaced)

class TwoPoint(_CentralDifference):
    """MeZO's two-point (SPSA) estimator along a seeded direction; not private."""

    name = "two_point"
    private = False

class DPZero(_CentralDifference):
    """DPZero: clip each example's directional derivative, privatise one scalar per step."""

    name = "dpzero"

class DPGD0(_CentralDifference):
    """DPGD-0th: clip each example's vector d_i·u to norm C, add d-dimensional noise from a secret key."""

    name = "dpgd0"
    noise_space = "parameters"

    def bound_scale(self, params: TrainableParams, seed: int, scale: float) -> float:
        # ‖d_i·u‖ = |d_i|·‖u‖ ≤ C  ⇔  |d_i| ≤ C/‖u‖; a sphere direction has ‖u‖ = √d exactly
        norm = math.sqrt(params.numel()) if self.options.direction == "sphere" else math.sqrt(squared_norm(params, seed))
        return 1.0 / norm
