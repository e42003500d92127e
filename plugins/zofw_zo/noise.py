"""Noise mechanisms."""

from __future__ import annotations

import numpy as np
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


class LaplaceNoise(Noise):
    """Laplace noise Lap(b) with b = σ·Δ₁ per coordinate: the Laplace mechanism, pure ε-DP with ε = Δ₁/b = 1/σ
    per release (before subsampling). Drawn by inverse CDF from the secure stream's uniforms."""

    name = "laplace"
    mechanism = "laplace"
    sensitivity_norm = "l1"

    def sample(self, shape: tuple[int, ...], scale: float, source: SecretStream) -> torch.Tensor:
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        centred = source.uniform(count) - 0.5  # in (−½, ½), never 0 or ±½ exactly: 53-bit grid offset by half
        values = -np.sign(centred) * np.log1p(-2.0 * np.abs(centred)) * scale
        return torch.from_numpy(values).reshape(shape)
