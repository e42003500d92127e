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
    step_along(as_number, 7, [(7, 2.5)], context, stochastic_rounding=True)
    DPZero(SmoothingOptions()).update(as_tensor, 7, torch.tensor([2.5], dtype=torch.float64), context)
    assert torch.equal(as_number.tensors[0], as_tensor.tensors[0])
    assert not torch.equal(as_number.tensors[0], start)


def smooth(dims: int = 12, n: int = 4):
    """Per-example losses Σ_j w_ij·exp(θ_j) (not quadratic: finite differences have a bias), float64."""
    torch.manual_seed(3)
    theta = torch.randn(dims, dtype=torch.float64) * 0.3
    weights = torch.rand(n, dims, dtype=torch.float64)
    params = TrainableParams(["w"], [theta])
    return params, (lambda: (weights * theta.exp()).sum(1)), (lambda: weights * theta.exp())


@pytest.mark.parametrize("difference, order", [("central", 2), ("forward", 1)])
def test_a_difference_misses_the_directional_derivative_by_lambda_to_its_order(difference, order):
    params, losses, gradients = smooth()
    errors = []
    for smoothing in (1e-2, 1e-3):
        estimator = TwoPoint(SmoothingOptions(smoothing=smoothing, difference=difference))
        values = estimator.per_example(params, losses, seed=5).values[:, 0]
        estimator.update(params, 5, torch.zeros(1, dtype=torch.float64), UpdateContext(1, 0.0, 0.0))
        exact = gradients() @ direction(params, 5)
        errors.append(float((values - exact).abs().max()))
    assert errors[0] / errors[1] == pytest.approx(10.0 ** order, rel=0.2)  # λ ten times smaller


@pytest.mark.parametrize("difference", ["central", "forward"])
def test_the_mean_over_directions_approaches_the_gradient(difference):
    params, losses, gradients = smooth()
    estimator = TwoPoint(SmoothingOptions(smoothing=1e-4, difference=difference))
    total = torch.zeros(12, dtype=torch.float64)
    draws = 4000
    for seed in range(draws):
        values = estimator.per_example(params, losses, seed).values[:, 0]
        estimator.update(params, seed, torch.zeros(1, dtype=torch.float64), UpdateContext(1, 0.0, 0.0))
        total += values.mean() * direction(params, seed)
    gradient = gradients().mean(0)
    assert float((total / draws - gradient).norm() / gradient.norm()) < 0.15


def test_k_directions_with_k_1_is_dpzero_bit_for_bit():
    from zofw_zo.estimators import DPZeroMulti, MultiDirectionOptions

    results = []
    for estimator in (DPZero(SmoothingOptions()), DPZeroMulti(MultiDirectionOptions(directions=1))):
        params, losses, _ = quadratic()
        measured = estimator.per_example(params, losses, seed=77)
        estimator.update(params, 77, measured.values.mean(0), UpdateContext(1, 0.1, 0.01))
        results.append((measured.values, torch.cat([t.flatten() for t in params.tensors])))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_k_directions_are_released_as_one_gaussian_per_step():
    from zofw.privacy.ledger import PrivacyLedger
    from zofw.privacy.release import PrivateRelease
    from zofw.privacy.secure import SecretStream
    from zofw_zo.clippers import BoundOptions, L2Clipper
    from zofw_zo.estimators import DPZeroMulti, MultiDirectionOptions

    estimator = DPZeroMulti(MultiDirectionOptions(directions=8))
    ledger = PrivacyLedger(1e-5)
    release = PrivateRelease(L2Clipper(BoundOptions(bound=1.0)), GaussianNoise(GaussianNoise.Options()), 1.3, 0.01,
                             estimator, 4.0, SecretStream(), ledger)
    params, losses, _ = quadratic()
    for step in range(1, 4):
        measured = estimator.per_example(params, losses, seed=step)
        assert measured.values.shape == (5, 8)
        released = release.privatize(measured)
        assert released.coefficients.shape == (8,)
        estimator.update(params, step, released.coefficients, UpdateContext(step, 1e-3, 0.0))
    assert ledger.steps == 3 and len(ledger.events) == 1 and ledger.events[0].noise_multiplier == 1.3
    assert release.scale == pytest.approx(1.3)  # L2-clipped K-vector: sensitivity C whatever K is


def test_dpzero_multi_runs_end_to_end_from_a_recipe(toy_recipe, tmp_path):
    import json

    from typer.testing import CliRunner

    from zofw.cli import app

    result = CliRunner().invoke(app, ["run", str(toy_recipe), "--out", str(tmp_path / "run"), "--json",
                                      "--set", 'estimator={name = "dpzero_multi", directions = 3}',
                                      "--set", 'clipper={name = "l2", bound = 2.0}', "--set", "train.steps=60",
                                      "--set", "train.eval_every=0"])
    assert result.exit_code == 0, result.output
    ledger = json.loads((tmp_path / "run" / "privacy_ledger.json").read_text())
    assert len(ledger["events"]) == 1 and ledger["events"][0]["steps"] == 60  # one mechanism per step, K = 3
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(len(line["projected_grad"]) == 3 for line in lines if "projected_grad" in line)
