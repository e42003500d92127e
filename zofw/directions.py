"""Seeded random directions, regenerated on the fly and never stored.

A direction u ~ N(0, I_d) over the trainable parameters is a function of a public seed: element i (its
global index, see ``TrainableParams.offsets``) is ``zofw.kernels.normal(seed, i)``, a counter-based
Philox stream. So u does not depend on how the parameters are split, fused or sharded, and
regenerating it costs compute, not memory: zeroth-order training stays at inference memory.

Two ways to use it:
- :func:`perturbed` (what first-party estimators use): forwards inside the block see θ + αu, formed
  just in time in a scratch tensor per layer; θ itself is never written, so the probe is exact in
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
    for index, tensor in enumerate(params.tensors):
        u = kernels.normal(seed, params.offsets[index], tensor.numel(), tensor.device)
        yield index, tensor, u.view_as(tensor).to(tensor.dtype)


def axpy_(params: TrainableParams, terms: Sequence[tuple[int, float]], shrink: Sequence[float] | float = 1.0,
          rounding_seed: Optional[int] = None) -> None:
    """θ ← shrink·θ + Σ_j coef_j·u(seed_j) in one pass, rounded once (stochastically with ``rounding_seed``).

    ``shrink`` is one factor, or one per tensor (weight decay skips biases and norms).
    """
    factors = [shrink] * len(params.tensors) if isinstance(shrink, (int, float)) else list(shrink)
    if params.flat is not None and len(set(factors)) <= 1:
        kernels.axpy_directions_(params.flat, params.flat, factors[0] if factors else 1.0, terms, 0, rounding_seed)
        return
    for tensor, offset, factor in zip(params.tensors, params.offsets, factors):
        flat = tensor.view(-1)
        kernels.axpy_directions_(flat, flat, factor, terms, offset, rounding_seed)


def perturb_(params: TrainableParams, seed: int, alpha: float) -> None:
    """θ ← θ + alpha·u in place (in fp16/bf16 a later −alpha does not restore θ exactly: prefer perturbed)."""
    axpy_(params, [(seed, alpha)])


@contextmanager
def perturbed(params: TrainableParams, seed: int, alpha: float) -> Iterator[None]:
    """Inside the block, every forward of ``params.module`` sees θ + alpha·u(seed); θ is never written.

    Each module that holds trainable parameters gets, for the length of its own forward, scratch tensors
    θ_slice + alpha·u_slice (same global offsets, so the same u); the scratch is freed after it, so the
    memory overhead is one layer's weights. Parameters without an owning module fall back to an in-place
    perturbation and its reversal (exact in float64, not in half precision).
    """
    owners = params.owners()
    if not owners:
        perturb_(params, seed, alpha)
        try:
            yield
        finally:
            perturb_(params, seed, -alpha)
        return
    handles, originals = [], []
    for module, held in owners:
        saved = {name: module._parameters[name] for name, _ in held}
        originals.append((module, saved))

        def swap_in(mod, args, held=held):
            for name, index in held:
                source = params.tensors[index]
                scratch = torch.empty_like(source)
                kernels.axpy_directions_(scratch.view(-1), source.view(-1), 1.0, [(seed, alpha)], params.offsets[index])
                mod._parameters[name] = scratch

        def swap_out(mod, args, output, saved=saved):
            mod._parameters.update(saved)

        handles.append(module.register_forward_pre_hook(swap_in))
        handles.append(module.register_forward_hook(swap_out))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, saved in originals:  # a forward that raised may have left scratch tensors in place
            module._parameters.update(saved)


def squared_norm(params: TrainableParams, seed: int) -> float:
    """‖u‖² of the direction drawn from ``seed`` (one extra pass; needed for sphere directions)."""
    device = params.tensors[0].device if params.tensors else "cpu"
    return kernels.squared_norm(seed, params.numel(), device)
