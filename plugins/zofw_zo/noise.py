"""Noise mechanisms."""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import numpy as np
import torch
from pydantic import Field

from zofw.batching import on_device
from zofw.privacy.discrete_gaussian import discrete_gaussian
from zofw.slots.base import Options

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


class DiscreteGaussianOptions(Options):
    grid: int = Field(1024, ge=1, le=2**20)  # grid points per clip bound C: the sum is released in steps of C/grid


class DiscreteGaussianNoise(Noise):
    """The exact discrete Gaussian (Canonne, Kamath, Steinke 2020) on a grid of step γ = C/grid.

    The clipped sum S is rounded to the grid, round(S/γ), which moves by at most grid + 1 grid steps when
    one example is added or removed (|ΔS| ≤ C, plus one for the rounding): that integer is the
    sensitivity Δ the ledger records, and Z ~ N_Z(0, (σ·Δ)²) is drawn exactly from the secure stream
    (rational arithmetic, ``zofw.privacy.discrete_gaussian``). The release is γ·(round(S/γ) + Z). One
    value per step; accounted exactly by ``pld`` (dp-accounting's discrete-Gaussian privacy loss).
    """

    name = "discrete_gaussian"
    mechanism = "discrete_gaussian"
    sensitivity_norm = "l2"
    max_dims = 1
    Options = DiscreteGaussianOptions
    options: DiscreteGaussianOptions

    def ledger_sensitivity(self) -> Optional[int]:
        return self.options.grid + 1

    def add_to(self, total: torch.Tensor, multiplier: float, sensitivity: float, source: SecretStream) -> torch.Tensor:
        step = sensitivity / self.options.grid  # γ = C / grid
        variance = Fraction(multiplier * (self.options.grid + 1)) ** 2  # (σ·Δ)², Δ in grid units
        on_grid = torch.round(total.double() / step)
        draws = torch.tensor([discrete_gaussian(variance, source) for _ in range(total.numel())], dtype=torch.float64)
        return ((on_grid + on_device(draws.reshape(total.shape), total.device)) * step).to(total.dtype)

    def sample(self, shape: tuple[int, ...], scale: float, source: SecretStream) -> torch.Tensor:
        raise NotImplementedError("the discrete Gaussian rounds the sum onto its grid: use add_to")
