"""Noise mechanisms."""

from __future__ import annotations

import torch

from zofw.slots.noise import Noise


class GaussianNoise(Noise):
    """Gaussian noise N(0, (σ·Δ₂)²) per coordinate: the subsampled Gaussian mechanism."""

    name = "gaussian"
    mechanism = "gaussian"

    def sample(self, like: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
        noise = torch.empty_like(like).normal_(generator=generator)
        return noise.mul_(scale)
