"""Poisson sampling: each example joins each batch independently with probability q.

This is the sampling that the RDP, PLD and PRV accountants assume for the subsampled Gaussian, so the
loop uses it by construction; batch sizes vary from step to step and are never released.
"""

from __future__ import annotations

import torch


class PoissonSampler:
    def __init__(self, n: int, sample_rate: float, generator: torch.Generator) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample rate must be in (0, 1], got {sample_rate}")
        self.n, self.sample_rate, self.generator = n, sample_rate, generator

    def sample(self) -> list[int]:
        included = torch.rand(self.n, generator=self.generator, dtype=torch.float64) < self.sample_rate
        return included.nonzero().flatten().tolist()
