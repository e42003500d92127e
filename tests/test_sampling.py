from __future__ import annotations

"""Batches are drawn as the accountant assumes: Poisson coins, or uniform fixed-size subsets."""

import pytest
import torch

from zofw.errors import BadInput
from zofw.privacy.secure import SecretStream
from zofw.sampling import FixedSizeSampler, PoissonSampler, Sampling


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


def test_fixed_size_batches_are_uniform_subsets_of_b_distinct_examples():
    sampler = FixedSizeSampler(10, 3, SecretStream())
    hits = torch.zeros(10)
    pair = 0
    for _ in range(6000):
        batch = sampler.sample()
        assert len(batch) == len(set(batch)) == 3 and all(0 <= i < 10 for i in batch)
        hits += torch.tensor([i in batch for i in range(10)], dtype=torch.float32)
        pair += {0, 1} <= set(batch)
    assert torch.allclose(hits / 6000, torch.full((10,), 0.3), atol=0.025)  # P(i ∈ B) = b/n
    assert abs(pair / 6000 - 3 * 2 / (10 * 9)) < 0.015  # P({i, j} ⊆ B) = b(b−1)/(n(n−1)): uniform subsets


def test_the_secure_integer_draw_is_uniform():
    stream = SecretStream()
    counts = torch.bincount(torch.tensor([stream.below(6) for _ in range(6000)]), minlength=6).double()
    assert counts.shape == (6,)
    chi_square = float(((counts - 1000) ** 2 / 1000).sum())
    assert chi_square < 20.5  # 5 degrees of freedom, p = 0.001


def test_each_scheme_states_its_relation_and_the_sums_sensitivity():
    poisson, fixed = Sampling.of("poisson", 8, 100), Sampling.of("fixed_size", 8, 100)
    assert (poisson.neighbouring, poisson.sensitivity_factor, poisson.batch_size) == ("add/remove-one", 1.0, None)
    assert (fixed.neighbouring, fixed.sensitivity_factor, fixed.batch_size) == ("replace-one", 2.0, 8)
    with pytest.raises(BadInput, match="whole batch size"):
        Sampling.of("fixed_size", 7.5, 100)
    with pytest.raises(BadInput, match="exceeds"):
        Sampling.of("poisson", 101, 100)
