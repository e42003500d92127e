from __future__ import annotations

import torch

from zofw.privacy.secure import SecretStream
from zofw.sampling import PoissonSampler


def test_poisson_batches_have_the_expected_mean_and_binomial_spread():
    sampler = PoissonSampler(1000, 0.02, SecretStream())
    sizes = torch.tensor([len(sampler.sample()) for _ in range(3000)], dtype=torch.float64)
    assert abs(float(sizes.mean()) - 20) < 0.5
    assert abs(float(sizes.var()) - 1000 * 0.02 * 0.98) < 2.5  # Binomial(n, q), not a fixed size


def test_each_example_is_included_independently():
    sampler = PoissonSampler(10, 0.5, SecretStream())
    hits = torch.zeros(10)
    both = 0
    for _ in range(4000):
        batch = set(sampler.sample())
        hits += torch.tensor([i in batch for i in range(10)], dtype=torch.float32)
        both += {0, 1} <= batch
    assert torch.allclose(hits / 4000, torch.full((10,), 0.5), atol=0.04)
    assert abs(both / 4000 - 0.25) < 0.03
