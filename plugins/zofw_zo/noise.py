"""Noise mechanisms."""

from __future__ import annotations

import torch

from zofw.privacy.secure import SecretStream
from zofw.slots.noise import Noise


class GaussianNoise(Noise):
    """Gaussian noise N(0, (σ·Δ₂)²) per coordinate: the subsampled Gaussian mechanism."""

    name = "gaussian"
    mechanism = "gaussian"
    sensitivity_norm = "l2"

    def sample(self, shape: tuple[int, ...], scale: float, source: SecretStream) -> torch.Tensor:
        count = 1
        for size in shape:
            count *= size
        return source.normal(count).reshape(shape) * scale

    def sample_like(self, like: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
        return torch.empty_like(like).normal_(generator=generator).mul_(scale)
