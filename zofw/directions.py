"""Seeded random directions, regenerated tensor by tensor and never stored.

A direction u ~ N(0, I_d) over the trainable parameters is a function of a public seed: tensor i of u is
drawn from a generator seeded with ``stream_seed(seed, i)``. Regenerating it costs one pass over the
weights and no memory beyond one tensor, which is what keeps zeroth-order training at inference memory.
"""

from __future__ import annotations

from typing import Iterator

import torch

from zofw.params import TrainableParams

_MASK64 = (1 << 64) - 1


def stream_seed(seed: int, index: int) -> int:
    """Decorrelated 63-bit seed for stream ``index`` of ``seed`` (SplitMix64 finaliser)."""
    x = (seed * 0x9E3779B97F4A7C15 + index + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (x ^ (x >> 31)) >> 1


def draw(like: torch.Tensor, seed: int) -> torch.Tensor:
    """Standard normal tensor shaped, typed and placed like ``like``, drawn from ``seed``."""
    generator = torch.Generator(device=like.device)
    generator.manual_seed(seed)
    return torch.empty_like(like).normal_(generator=generator)


def iter_direction(params: TrainableParams, seed: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield (index, parameter, its slice of u) for the direction drawn from ``seed``."""
    for index, tensor in enumerate(params.tensors):
        yield index, tensor, draw(tensor, stream_seed(seed, index))


def perturb_(params: TrainableParams, seed: int, alpha: float) -> None:
    """θ ← θ + alpha·u in place."""
    for _, tensor, z in iter_direction(params, seed):
        tensor.add_(z, alpha=alpha)


def squared_norm(params: TrainableParams, seed: int) -> float:
    """‖u‖² of the direction drawn from ``seed`` (one extra pass; needed for sphere directions)."""
    return float(sum(z.float().pow(2).sum() for _, _, z in iter_direction(params, seed)))
