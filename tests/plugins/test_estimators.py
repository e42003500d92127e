"""The zeroth-order estimators on a quadratic, where every quantity is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from zofw.directions import iter_direction, squared_norm
from zofw import kernels
from zofw.params import TrainableParams
from zofw.privacy.release import BulkParameterNoise
from zofw_zo.noise import GaussianNoise
from zofw.slots.estimator import UpdateContext
from zofw_zo.estimators import DPGD0, DPZero, SmoothingOptions, TwoPoint, step_along


def quadratic(dims: int = 30, n: int = 5):
    """Per-example losses ½‖θ − x_i‖² over two parameter tensors, in float64 (exact arithmetic)."""
    torch.manual_seed(0)
    theta = [torch.randn(dims, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)]
    params = TrainableParams(["layer.weight", "layer.bias"], theta)
    xs = [(torch.randn(dims, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)) for _ in range(n)]

    def losses() -> torch.Tensor:
        return torch.stack([0.5 * ((theta[0] - a) ** 2).sum() + 0.5 * ((theta[1] - b) ** 2).sum() for a, b in xs])

    def gradients() -> list[torch.Tensor]:
        return [torch.cat([(theta[0] - a).flatten(), (theta[1] - b).flatten()]) for a, b in xs]

    return params, losses, gradients


def direction(params: TrainableParams, seed: int) -> torch.Tensor:
    return torch.cat([z.flatten() for _, _, z in iter_direction(params, seed)])


@pytest.mark.parametrize("kind", ["gaussian", "sphere"])
def test_per_example_values_are_directional_derivatives_and_update_restores_then_steps(kind):
    params, losses, gradients = quadratic()
    estimator = DPZero(SmoothingOptions(smoothing=1e-3, direction=kind))
    before = torch.cat([t.flatten() for t in params.tensors]).clone()
    grads = torch.stack(gradients())
    u = direction(params, seed=5)
    if kind == "sphere":
        u = u * math.sqrt(u.numel()) / u.norm()
        assert float(u.norm()) == pytest.approx(math.sqrt(params.numel()))
    measured = estimator.per_example(params, losses, seed=5)
    # central differences are exact for a quadratic: d_i = ∇f_i · u
    assert torch.allclose(measured.values[:, 0].double(), grads @ u, rtol=1e-6, atol=1e-6)
    estimator.update(params, 5, torch.tensor([0.7]), UpdateContext(1, lr=0.1, weight_decay=0.0))
    after = torch.cat([t.flatten() for t in params.tensors])
    assert torch.allclose(after, before - 0.1 * 0.7 * u, atol=1e-10)


def test_weight_decay_skips_biases():
    params, losses, _ = quadratic()
    weight, bias = (t.clone() for t in params.tensors)
    estimator = TwoPoint(SmoothingOptions())
    estimator.per_example(params, losses, seed=1)
    estimator.update(params, 1, torch.tensor([0.0]), UpdateContext(1, lr=0.1, weight_decay=0.5))
    assert torch.allclose(params.tensors[0], weight * (1 - 0.05), atol=1e-10)
    assert torch.allclose(params.tensors[1], bias, atol=1e-10)


def test_dpgd0_clips_the_vector_norm_and_adds_noise_to_every_coordinate():
    params, losses, _ = quadratic()
    estimator = DPGD0(SmoothingOptions())
    norm = math.sqrt(squared_norm(params, 2))
    measured = estimator.per_example(params, losses, seed=2)
    assert measured.bound_scale == pytest.approx(1 / norm)
    before = torch.cat([t.flatten() for t in params.tensors]).clone()
    noise = BulkParameterNoise(GaussianNoise(GaussianNoise.Options()), 0.5, step_key=123)
    estimator.update(params, 2, torch.tensor([0.0]), UpdateContext(1, lr=1.0, weight_decay=0.0, parameter_noise=noise))
    # the probe left θ untouched; the only change is the noise, on every coordinate, keyed by the secret
    after = torch.cat([t.flatten() for t in params.tensors])
    expected = -0.5 * kernels.normal(123, 0, params.numel()).double()
    assert torch.allclose(after - before, expected, atol=1e-7) and noise.drawn == params.numel()


def test_two_point_descends_a_quadratic():
    params, losses, _ = quadratic(dims=10, n=20)
    estimator = TwoPoint(SmoothingOptions())
    start = float(losses().mean())
    for step in range(300):
        measured = estimator.per_example(params, losses, seed=step)
        estimator.update(params, step, measured.values.mean(0), UpdateContext(step, lr=0.02, weight_decay=0.0))
    assert float(losses().mean()) < 0.5 * start


def test_directions_are_reproducible_and_differ_across_seeds_and_tensors():
    params, _, _ = quadratic()
    assert torch.equal(direction(params, 9), direction(params, 9))
    assert not torch.equal(direction(params, 9), direction(params, 10))
    first, second = (z.flatten()[:12] for _, _, z in iter_direction(params, 9))
    assert not torch.allclose(first, second)


def test_inplace_perturbation_restores_in_the_update_pass():
    params, losses, _ = quadratic()
    before = torch.cat([t.flatten() for t in params.tensors]).clone()
    estimator = DPZero(SmoothingOptions(perturbation="inplace"))
    exact = DPZero(SmoothingOptions())
    measured = estimator.per_example(params, losses, seed=8)
    assert torch.allclose(measured.values, exact.per_example(*quadratic()[:2], seed=8).values, atol=1e-9)
    estimator.update(params, 8, torch.tensor([0.3]), UpdateContext(1, lr=0.1, weight_decay=0.0))
    after = torch.cat([t.flatten() for t in params.tensors])
    assert torch.allclose(after, before - 0.1 * 0.3 * direction(params, 8), atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_a_coefficient_left_on_the_device_gives_the_same_update_as_a_number(dtype):
    """The released coefficient (float64, on the device) goes to the update as a tensor: no read-back."""
    torch.manual_seed(1)
    start = torch.randn(1000).to(dtype)
    as_number, as_tensor = (TrainableParams(["w"], [start.clone()]) for _ in range(2))
    context = UpdateContext(1, 1e-2, 0.1)
    step_along(as_number, 7, 2.5, context, stochastic_rounding=True)
    DPZero(SmoothingOptions()).update(as_tensor, 7, torch.tensor([2.5], dtype=torch.float64), context)
    assert torch.equal(as_number.tensors[0], as_tensor.tensors[0])
    assert not torch.equal(as_number.tensors[0], start)
