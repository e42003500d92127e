"""Seeded random directions, regenerated on the fly and never stored.

A direction u ~ N(0, I_d) over the trainable parameters is a function of a public seed: element i (its
global index, see ``TrainableParams.offsets``) is ``zofw.kernels.normal(seed, i)``, a counter-based
Philox stream. So u does not depend on how the parameters are split, fused or sharded, and
regenerating it costs compute, not memory: zeroth-order training stays at inference memory.

Two ways to use it:
- :func:`perturbed` (what first-party estimators use): forwards inside the block see θ + αu, formed
  just in time in a scratch buffer per model block (one launch per layer); θ itself is never written, so the probe is exact in
  every dtype (the +λ/−2λ/+λ round trip of the reference code drifts in fp16/bf16).
- :func:`axpy_` and :func:`perturb_`: one fused pass θ ← s·θ + Σ c_j·u_j over all weights (one launch
  when the weights share a flat buffer).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import torch

from zofw import kernels
from zofw.params import TrainableParams

_MASK64 = (1 << 64) - 1
# Recorded in seed logs: a replay must draw the same directions (bump the version if they ever change).
# v2: eight normals per Philox call from 16-bit uniforms; float16 stochastic rounding with 13 bits everywhere.
DIRECTION_GENERATOR = "philox4x32-7/box-muller-16/v2"


def stream_seed(seed: int, index: int) -> int:
    """Decorrelated 63-bit seed for stream ``index`` of ``seed`` (SplitMix64 finaliser).

    Step t's public direction seed is ``stream_seed(recipe.seed, t)``: distinct steps never share one
    (the finaliser is a bijection of seed·φ + t + 1). K directions of one step use
    :func:`direction_seeds`.
    """
    x = (seed * 0x9E3779B97F4A7C15 + index + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (x ^ (x >> 31)) >> 1


def direction_seeds(seed: int, count: int) -> list[int]:
    """Seeds of the K directions of one step (K = 1: the step's seed itself)."""
    return [seed] if count == 1 else [stream_seed(seed, (1 << 32) + k) for k in range(count)]


def iter_direction(params: TrainableParams, seed: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield (index, parameter, its slice of u), u shaped and typed like the parameter."""
    params.settle()  # callers write θ through these tensors: an update still pending comes first
    for index, tensor in enumerate(params.tensors):
        u = kernels.normal(seed, params.offsets[index], tensor.numel(), tensor.device)
        yield index, tensor, u.view_as(tensor).to(tensor.dtype)


def axpy_(params: TrainableParams, terms: Sequence[tuple[int, kernels.philox.Coefficient]], shrink: Sequence[float] | float = 1.0,
          rounding_seed: Optional[int] = None) -> None:
    """θ ← shrink·θ + Σ_j coef_j·u(seed_j) in one pass, rounded once (stochastically with ``rounding_seed``).

    ``shrink`` is one factor, or one per tensor (weight decay skips biases and norms).
    """
    params.settle()  # an update still pending comes first
    factors = [shrink] * len(params.tensors) if isinstance(shrink, (int, float)) else list(shrink)
    if params.flat is not None and len(set(factors)) <= 1:
        kernels.axpy_directions_(params.flat, params.flat, factors[0] if factors else 1.0, terms, 0, rounding_seed)
        return
    for tensor, offset, factor in zip(params.tensors, params.offsets, factors):
        flat = tensor.view(-1)
        kernels.axpy_directions_(flat, flat, factor, terms, offset, rounding_seed)


def update_(params: TrainableParams, terms: Sequence[tuple[int, kernels.philox.Coefficient]],
            shrink: Sequence[float], rounding_seed: Optional[int] = None) -> None:
    """:func:`axpy_` for a training update: inside ``params.deferred_updates()`` it is fused into the next
    probe's pass over the weights (two reads of θ per step instead of three); elsewhere applied now."""
    if params.module is not None and params.owners():
        jit = params.just_in_time()
        if jit.can_defer(shrink):
            jit.defer(terms, shrink[0] if shrink else 1.0, rounding_seed)
            return
    axpy_(params, terms, shrink, rounding_seed)


def perturb_(params: TrainableParams, seed: int, alpha: float) -> None:
    """θ ← θ + alpha·u in place (in fp16/bf16 a later −alpha does not restore θ exactly: prefer perturbed)."""
    axpy_(params, [(seed, alpha)])


@contextmanager
def perturbed(params: TrainableParams, seed: int, alpha: float) -> Iterator[None]:
    """Inside the block, every forward of ``params.module`` sees θ + alpha·u(seed); θ is never written.

    The perturbed weights are formed just in time, one model block at a time, in scratch memory
    (:mod:`zofw.just_in_time`). Without a module to hook, θ is perturbed in place and restored after
    (exact in float64, not in half precision).
    """
    if params.module is None or not params.owners():
        perturb_(params, seed, alpha)
        try:
            yield
        finally:
            perturb_(params, seed, -alpha)
        return
    with params.just_in_time().probing(seed, alpha):
        yield


def squared_norm(params: TrainableParams, seed: int) -> float:
    """‖u‖² of the direction drawn from ``seed`` (one extra pass; needed for sphere directions)."""
    device = params.tensors[0].device if params.tensors else "cpu"
    return kernels.squared_norm(seed, params.numel(), device)
