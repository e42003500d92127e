"""Zeroth-order estimators: MeZO's two-point step, DPZero (Algorithm 2), its K-direction form and
DPGD-0th (Algorithm 1).

All share one probe and one update:
- probe, per direction: two forwards that see θ + λu and θ − λu (or θ + λu and θ, one-sided), formed
  just in time layer by layer (``zofw.directions.perturbed``): θ is never written, so the weights stay
  bitwise exact in fp16/bf16;
- update: a fused pass θ ← (1 − η·wd)·θ − η·(1/K)·Σ_k ĝ_k·u_k (− η·noise for DPGD-0th), rounded once,
  stochastically in half precision so that steps below half an ulp are not lost; in the training loop
  it rides on the next probe's pass over the weights (``zofw.just_in_time``).
The K directions of a step come from ``direction_seeds(step seed, K)``; K = 1 is the step seed itself.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
from pydantic import Field

from zofw.batching import on_device
from zofw.directions import direction_seeds, perturb_, perturbed, squared_norm, stream_seed, update_
from zofw.kernels.philox import Coefficient
from zofw.params import TrainableParams
from zofw.slots.base import Options
from zofw.slots.estimator import Estimator, LossFn, PerExample, UpdateContext

_ROUNDING_STREAM = 1 << 40  # stream index of the (public) stochastic-rounding seed of a step

class SmoothingOptions(Options):
    smoothing: float = Field(1e-3, gt=0, allow_inf_nan=False)  # λ: MeZO and DPZero use 1e-3
    direction: Literal["gaussian", "sphere"] = "gaussian"  # sphere: u uniform on the radius-√d sphere (paper)
    # central: d_i = (f(θ+λu) − f(θ−λu)) / 2λ, bias O(λ²); forward: (f(θ+λu) − f(θ)) / λ, bias O(λ), the
    # same two forwards (the one-sided SPSA of the ZO literature)
    difference: Literal["central", "forward"] = "central"
    # fp16/bf16 weights: round each update stochastically (unbiased), so updates below half an ulp
    # (η·ĝ·u at η = 1e-6 often is) still move θ in expectation instead of vanishing
    stochastic_rounding: bool = True
    # exact: forwards see θ ± λu formed just in time per layer, θ never written (bitwise exact in fp16/bf16);
    # inplace: θ is moved along u and restored inside the update (fastest where launches dominate, but
    # fp16/bf16 round-trip drift)
    perturbation: Literal["exact", "inplace"] = "exact"


class MultiDirectionOptions(SmoothingOptions):
    directions: int = Field(4, ge=1, le=4096)  # K: each example contributes K differences per step


def probe(params: TrainableParams, losses: LossFn, seed: int, smoothing: float, inplace: bool = False,
          one_sided: bool = False) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Per-example differences along u(seed), a loss near θ, and where θ was left.

    Central: (f(θ+λu) − f(θ−λu)) / 2λ with the mean of the two losses; one-sided: (f(θ+λu) − f(θ)) / λ
    with f(θ). The third value is a with θ left at θ + a·u: 0 when exact (θ never written), −λ (central)
    or +λ (one-sided) in place; the update takes it out in the same pass as the step.
    """
    if one_sided:
        base = losses()
        if inplace:
            perturb_(params, seed, +smoothing)
            plus, left = losses(), smoothing
        else:
            with perturbed(params, seed, +smoothing):
                plus = losses()
            left = 0.0
        wide = torch.promote_types(plus.dtype, torch.float32)  # at least fp32: λ-differences are small
        return (plus.to(wide) - base.to(wide)) / smoothing, base.to(wide), left
    if inplace:
        perturb_(params, seed, +smoothing)
        plus = losses()
        perturb_(params, seed, -2 * smoothing)
        minus, left = losses(), -smoothing
    else:
        with perturbed(params, seed, +smoothing):
            plus = losses()
        with perturbed(params, seed, -smoothing):
            minus = losses()
        left = 0.0
    wide = torch.promote_types(plus.dtype, torch.float32)
    plus, minus = plus.to(wide), minus.to(wide)
    return (plus - minus) / (2 * smoothing), (plus + minus) / 2, left


def step_along(params: TrainableParams, step_seed: int, moves: Sequence[tuple[int, Coefficient]],
               context: UpdateContext, stochastic_rounding: bool,
               displaced: Sequence[tuple[int, float]] = ()) -> None:
    """θ ← (1 − η·wd)·θ − η·Σ_k c_k·u(seed_k) [− η·noise], in one fused pass over the weights.

    ``moves`` are (seed_k, c_k); ``displaced`` are (seed, a) with θ currently at θ + Σ a·u(seed) (an in-place
    probe), taken out in the same pass. A tensor c_k stays on the device: the kernel reads it there, so the
    host never waits for the GPU inside a step. The stochastic-rounding stream comes from ``step_seed``.
    """
    device = params.tensors[0].device if params.tensors else None
    moves = [(seed, on_device(c.detach().reshape(()), device) if isinstance(c, torch.Tensor) and device else c)
             for seed, c in moves]
    shrink = [1 - context.lr * context.weight_decay if decays else 1.0 for decays in params.decay]
    if displaced and len(set(shrink)) > 1:  # restore first: weight decay must not shrink the probe's offset
        for seed, amount in displaced:
            perturb_(params, seed, -amount)
        displaced = ()
    offset = dict(displaced)
    terms = [(seed, -offset.pop(seed, 0.0) * shrink[0] - context.lr * c) for seed, c in moves]
    terms += [(seed, -amount * shrink[0]) for seed, amount in offset.items()]
    if context.parameter_noise is not None:
        key, scale = context.parameter_noise.term(params)
        terms.append((key, -context.lr * scale))
    half = params.tensors and params.tensors[0].dtype in (torch.float16, torch.bfloat16)
    rounding = stream_seed(step_seed, _ROUNDING_STREAM) if stochastic_rounding and half else None
    update_(params, terms, shrink, rounding)


class _ZerothOrder(Estimator):
    """Shared probe and update: K directions drawn from the step's seed (``direction_seeds``)."""

    Options = SmoothingOptions
    options: SmoothingOptions
    follows_smoothing_schedule = True  # probes with λ_t = smoothing × smoothing_factor

    @property
    def smoothing(self) -> float:
        """λ of the current step."""
        return self.options.smoothing * self.smoothing_factor

    def __init__(self, options: SmoothingOptions) -> None:
        super().__init__(options)
        self._scales: dict[int, list[float]] = {}  # step seed -> each direction's scale (sphere)
        self._left: dict[int, list[tuple[int, float]]] = {}  # step seed -> where an in-place probe left θ

    def _direction_scale(self, params: TrainableParams, seed: int) -> float:
        """u = s·z with z ~ N(0, I): s = 1 (Gaussian) or √d/‖z‖ (uniform on the radius-√d sphere)."""
        if self.options.direction == "gaussian":
            return 1.0
        return math.sqrt(params.numel() / squared_norm(params, seed))

    def per_example(self, params: TrainableParams, losses: LossFn, seed: int) -> PerExample:
        seeds = direction_seeds(seed, self.directions())
        scales = self._scales[seed] = [self._direction_scale(params, s) for s in seeds]
        inplace, one_sided = self.options.perturbation == "inplace", self.options.difference == "forward"
        columns, loss, left = [], None, []
        for k, (direction, scale) in enumerate(zip(seeds, scales)):
            # d_i along u = s·z: the probe moves λ·s along z; differences / λs·s = differences along u
            differences, near, at = probe(params, losses, direction, self.smoothing * scale, inplace, one_sided)
            if at and k + 1 < len(seeds):  # put θ back before the next direction's probe
                perturb_(params, direction, -at)
                at = 0.0
            if at:
                left.append((direction, at))
            columns.append(differences * scale)
            loss = near if loss is None else loss
        self._left[seed] = left
        values = torch.stack(columns, dim=1)
        return PerExample(values=values, bound_scale=self.bound_scale(params, seed, scales[0]), loss=loss)

    def bound_scale(self, params: TrainableParams, seed: int, scale: float) -> float:
        return 1.0

    def update(self, params: TrainableParams, seed: int, coefficients: torch.Tensor,
               context: UpdateContext) -> None:
        seeds = direction_seeds(seed, self.directions())
        scales = self._scales.pop(seed, None) or [self._direction_scale(params, s) for s in seeds]
        # the mean over the K directions: a step size means the same whatever K is
        moves = [(s, coefficients[k] * (scale / len(seeds))) for k, (s, scale) in enumerate(zip(seeds, scales))]
        step_along(params, seed, moves, context, self.options.stochastic_rounding, self._left.pop(seed, []))


class TwoPoint(_ZerothOrder):
    """MeZO's two-point (SPSA) estimator along a seeded direction; not private."""

    name = "two_point"
    private = False


class DPZero(_ZerothOrder):
    """DPZero: clip each example's directional derivative, privatise one scalar per step."""

    name = "dpzero"


class DPZeroMulti(_ZerothOrder):
    """DPZero with K directions per step (DP-AggZO): each example's K differences are clipped together
    (clipper ``l2``: the K-vector to norm C) and ONE K-dimensional Gaussian is released per step."""

    name = "dpzero_multi"
    Options = MultiDirectionOptions
    options: MultiDirectionOptions

    def directions(self) -> int:
        return self.options.directions


class DPZOLaplace(_ZerothOrder):
    """DP-ZO (Tang et al. 2024): release the unnormalised difference, Laplace noise, pure ε-DP.

    Each example contributes f(θ+λu) − f(θ−λu) (one-sided: f(θ+λu) − f(θ)), not divided by 2λ, so the
    clipper's C bounds the loss difference itself (the paper: C = 0.05 at λ = 1e-3). Under add/remove-one
    neighbours the clipped sum moves by at most C (L1 = L2, one value); Laplace noise of scale σ·C makes
    each release (1/σ)-DP, amplified by Poisson sampling (accountants ``pure`` and ``pld``). The update
    divides the released value by 2λ (or λ) to step along the gradient estimate.
    """

    name = "dp_zo_laplace"
    requires_mechanism = "laplace"

    def _unnormalised(self) -> float:
        """difference = derivative estimate × this (2λ central, λ forward)."""
        return self.smoothing * (2.0 if self.options.difference == "central" else 1.0)

    def per_example(self, params: TrainableParams, losses: LossFn, seed: int) -> PerExample:
        measured = super().per_example(params, losses, seed)
        return PerExample(values=measured.values * self._unnormalised(), bound_scale=measured.bound_scale,
                          loss=measured.loss)

    def update(self, params: TrainableParams, seed: int, coefficients: torch.Tensor,
               context: UpdateContext) -> None:
        super().update(params, seed, coefficients / self._unnormalised(), context)


class DPGD0(_ZerothOrder):
    """DPGD-0th: clip each example's vector d_i·u to norm C, add d-dimensional noise from a secret key."""

    name = "dpgd0"
    noise_space = "parameters"

    def bound_scale(self, params: TrainableParams, seed: int, scale: float) -> float:
        # ‖d_i·u‖ = |d_i|·‖u‖ ≤ C  ⇔  |d_i| ≤ C/‖u‖; a sphere direction has ‖u‖ = √d exactly
        norm = math.sqrt(params.numel()) if self.options.direction == "sphere" else math.sqrt(squared_norm(params, seed))
        return 1.0 / norm
