"""Clipping bounds each example's influence; noise has the stated scale σ·sensitivity."""

from __future__ import annotations

import math

import pytest
import torch

from zofw.privacy.release import PrivateRelease
from zofw.slots.estimator import PerExample
from zofw_zo.clippers import BoundOptions, L2Clipper, ScalarClipper
from zofw_zo.noise import GaussianNoise


@pytest.mark.parametrize("clipper_class", [ScalarClipper, L2Clipper])
def test_adding_one_example_moves_the_clipped_sum_by_at_most_the_sensitivity(clipper_class):
    clipper = clipper_class(BoundOptions(bound=1.5))
    values = torch.randn(50, 4, dtype=torch.float64) * 10
    outlier = torch.full((1, 4), 1e6, dtype=torch.float64)
    with_it = clipper.clip(torch.cat([values, outlier])).sum(0)
    without = clipper.clip(values).sum(0)
    assert float((with_it - without).norm()) <= clipper.sensitivity(4) + 1e-9
    assert float((with_it - without).norm()) >= clipper.sensitivity(4) * 0.99  # and the bound is tight


def test_values_inside_the_bound_are_untouched():
    values = torch.tensor([[0.3], [-0.2]])
    assert torch.equal(ScalarClipper(BoundOptions(bound=1.0)).clip(values), values)
    assert torch.equal(L2Clipper(BoundOptions(bound=1.0)).clip(values), values)


def test_noise_std_is_sigma_times_sensitivity_and_reproducible_from_the_secret_seed():
    release = PrivateRelease(ScalarClipper(BoundOptions(bound=3.0)), GaussianNoise(GaussianNoise.Options()),
                             noise_multiplier=2.0, sample_rate=0.1, dims=1, secret_seed=11)
    draws = torch.stack([release.add_noise(torch.zeros(1, dtype=torch.float64)) for _ in range(20000)])
    assert float(draws.std()) == pytest.approx(6.0, rel=0.03)
    assert abs(float(draws.mean())) < 0.15
    again = PrivateRelease(ScalarClipper(BoundOptions(bound=3.0)), GaussianNoise(GaussianNoise.Options()),
                           2.0, 0.1, 1, secret_seed=11)
    assert float(again.add_noise(torch.zeros(1, dtype=torch.float64))) == float(draws[0])


def test_bound_scale_applies_to_the_clip_but_not_to_the_noise():
    release = PrivateRelease(ScalarClipper(BoundOptions(bound=4.0)), GaussianNoise(GaussianNoise.Options()),
                             1.0, 0.1, 1, secret_seed=0)
    clipped = release.clip(PerExample(values=torch.tensor([[100.0]]), bound_scale=0.25))
    assert float(clipped) == 1.0 and release.scale == 4.0 and math.isclose(release.event().noise_multiplier, 1.0)
