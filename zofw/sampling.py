"""Poisson sampling: each example joins each batch independently with probability q.

This is the sampling that the RDP, PLD and PRV accountants assume for the subsampled Gaussian, so the
loop uses it by construction. The inclusion coins come from the secret stream (a CSPRNG): amplification
by subsampling holds only if nobody can predict the batches. Batch sizes vary from step to step and
are never released.
"""

from __future__ import annotations

import numpy as np

from zofw.privacy.secure import SecretStream


class PoissonSampler:
    def __init__(self, n: int, sample_rate: float, source: SecretStream) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample rate must be in (0, 1], got {sample_rate}")
        self.n, self.sample_rate, self.source = n, sample_rate, source

    def sample(self) -> list[int]:
        return np.flatnonzero(self.source.bernoulli(self.n, self.sample_rate)).tolist()
