"""Conformance checks for third-party components: ``check_estimator(MyEstimator)``.

Run it in a plugin's own tests. It exercises the estimator the way the training loop does, on a float64
quadratic where every quantity is known, and raises AssertionError with one line saying what broke:

- ``per_example`` returns values of shape (b, K) with K = ``directions()``, finite, and ``bound_scale``
  in (0, 1] (the release refuses anything else, because the noise is calibrated for K values at C);
- the same public seed gives the same values, a different seed different ones (for estimators that
  measure along directions: ``uses_directions``);
- ``per_example`` followed by ``update`` with zero coefficients and lr = 0 leaves θ where it was (an
  estimator may leave θ displaced after probing; its update must restore it);
- every one of the K coefficients moves θ, each along its own direction;
- an estimator with ``noise_space = "parameters"`` adds the noise it is handed to every coordinate once;
- the loop's real step (probe, release without privacy, update) lowers the loss on the quadratic.
"""

from __future__ import annotations

from typing import Optional, Type

import torch

from zofw.directions import stream_seed
from zofw.params import TrainableParams
from zofw.errors import RunFailed
from zofw.privacy.release import BulkParameterNoise, NoPrivacy, Released
from zofw.slots.base import Options
from zofw.slots.estimator import Estimator, UpdateContext

__all__ = ["check_estimator"]


class QuadraticModel(torch.nn.Module):
    """A module whose forward gives per-example losses ½‖W − X_i‖² + ½‖b − x_i‖², float64: probes see
    its parameters exactly as they see a transformer's (through the module, perturbed just in time)."""

    def __init__(self, examples: int, generator: torch.Generator) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(6, 5, generator=generator, dtype=torch.float64), requires_grad=False)
        self.bias = torch.nn.Parameter(torch.randn(5, generator=generator, dtype=torch.float64), requires_grad=False)
        self.register_buffer("target_weight", torch.randn(examples, 6, 5, generator=generator, dtype=torch.float64) * 0.1)
        self.register_buffer("target_bias", torch.randn(examples, 5, generator=generator, dtype=torch.float64) * 0.1)

    def forward(self) -> torch.Tensor:
        return (0.5 * ((self.weight - self.target_weight) ** 2).sum((1, 2))
                + 0.5 * ((self.bias - self.target_bias) ** 2).sum(1))


class _Problem:
    """The conformance problem: a QuadraticModel and its trainable parameters (``trainable``: "all",
    "bias" or a regular expression, as a model adapter's)."""

    def __init__(self, examples: int = 6, seed: int = 0, trainable: str = "all") -> None:
        self.model = QuadraticModel(examples, torch.Generator().manual_seed(seed))
        self.params = TrainableParams.select(self.model, trainable)
        self.targets = list(zip(self.model.target_weight, self.model.target_bias))

    def losses(self) -> torch.Tensor:
        return self.model()

    def theta(self) -> torch.Tensor:
        self.params.settle()
        return torch.cat([t.reshape(-1) for t in self.params.tensors]).clone()

    def floor(self) -> float:
        """The mean loss with the trainable tensors at their optimum (the targets' mean), the rest as now."""
        with torch.no_grad():
            saved = [t.clone() for t in self.params.tensors]
            for name, tensor in zip(self.params.names, self.params.tensors):
                tensor.copy_((self.model.target_weight if name == "weight" else self.model.target_bias).mean(0))
            value = float(self.losses().mean())
            for tensor, old in zip(self.params.tensors, saved):
                tensor.copy_(old)
        return value


def _fail(name: str, message: str) -> None:
    raise AssertionError(f"estimator '{name}': {message}")


def check_estimator(estimator_class: Type[Estimator], options: Optional[Options] = None,
                    trainable: str = "all") -> None:
    """Raise AssertionError (one line) unless ``estimator_class`` honours the estimator contract
    (``trainable``: the parameter subset it trains, e.g. "bias" for DP-BiTFiT)."""
    def make(params: TrainableParams) -> Estimator:
        built = estimator_class(options if options is not None else estimator_class.Options())
        built.prepare(params)
        return built

    def Quadratic(trainable: str = trainable) -> "_Problem":  # noqa: N802 - every problem with the same subset
        return _Problem(trainable=trainable)

    problem = Quadratic()
    estimator = make(problem.params)
    name = getattr(estimator, "name", estimator_class.__name__)
    K = estimator.directions()
    if not isinstance(K, int) or K < 1:
        _fail(name, f"directions() must be a positive int, got {K!r}")
    context = UpdateContext(step=1, lr=0.0, weight_decay=0.0)

    # shapes, finiteness, bound_scale; zero coefficients restore θ
    start = problem.theta()
    seed = stream_seed(1234, 1)
    measured = estimator.per_example(problem.params, problem.losses, seed)
    values = measured.values
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (len(problem.targets), K):
        _fail(name, f"per_example values must have shape (b, K) = ({len(problem.targets)}, {K}), "
                    f"got {tuple(getattr(values, 'shape', ()))}")
    if not torch.isfinite(values).all():
        _fail(name, "per_example returned non-finite values on a smooth quadratic")
    if not 0 < measured.bound_scale <= 1:
        _fail(name, f"bound_scale must be in (0, 1], got {measured.bound_scale}")
    estimator.update(problem.params, seed, torch.zeros(K, dtype=torch.float64), context)
    if not torch.allclose(problem.theta(), start, rtol=0, atol=1e-12):
        _fail(name, "per_example then update with zero coefficients did not restore θ")

    # the public seed alone decides the values
    fresh = make(problem.params)
    again = fresh.per_example(problem.params, problem.losses, seed)
    fresh.update(problem.params, seed, torch.zeros(K, dtype=torch.float64), context)
    other_seed = stream_seed(1234, 2)
    other = fresh.per_example(problem.params, problem.losses, other_seed)
    fresh.update(problem.params, other_seed, torch.zeros(K, dtype=torch.float64), context)
    if not torch.allclose(again.values, values, rtol=1e-9, atol=1e-12):
        _fail(name, "the same seed gave different values: directions must come from the seed alone")
    if estimator_class.uses_directions and torch.allclose(other.values, values, rtol=1e-6, atol=0):
        _fail(name, "a different seed gave the same values")

    # every coefficient moves θ along its own direction
    moves = []
    for k in range(K):
        problem = Quadratic()
        start = problem.theta()
        estimator = make(problem.params)
        estimator.per_example(problem.params, problem.losses, seed)
        coefficients = torch.zeros(K, dtype=torch.float64)
        coefficients[k] = 1.0
        estimator.update(problem.params, seed, coefficients, UpdateContext(step=1, lr=1e-2, weight_decay=0.0))
        moves.append(problem.theta() - start)
    stacked = torch.stack(moves)
    if bool((stacked.norm(dim=1) == 0).any()):
        _fail(name, "a coefficient left θ unchanged: every one of the K directions must be used")
    if K > 1 and int(torch.linalg.matrix_rank(stacked)) < K:
        _fail(name, f"the {K} coefficients move θ along fewer than {K} distinct directions")

    # parameter-space noise reaches every coordinate exactly once
    if estimator_class.noise_space == "parameters":
        from zofw_zo.noise import GaussianNoise  # first-party noise; imported here to keep zofw core light

        problem = Quadratic()
        estimator = make(problem.params)
        estimator.per_example(problem.params, problem.losses, seed)
        noise = BulkParameterNoise(GaussianNoise(GaussianNoise.Options()), 1.0, 99)
        estimator.update(problem.params, seed, torch.zeros(K, dtype=torch.float64),
                         UpdateContext(step=1, lr=1e-2, weight_decay=0.0, parameter_noise=noise))
        try:
            Released(torch.zeros(K), public=None, parameter_noise=noise).check_complete(problem.params)
        except RunFailed as error:  # the loop stops a run on this; here it is a failed check
            _fail(name, f"parameter noise: {error}")

    # the loop's real step lowers the loss (toward what the trainable subset can reach)
    problem = Quadratic()
    estimator = make(problem.params)
    release = NoPrivacy(float(len(problem.targets)), K)
    before, floor = float(problem.losses().mean()), problem.floor()
    for step in range(1, 301):
        step_seed = stream_seed(7, step)
        measured = estimator.per_example(problem.params, problem.losses, step_seed)
        released = release.privatize(measured)
        estimator.update(problem.params, step_seed, released.coefficients,
                         UpdateContext(step=step, lr=5e-3, weight_decay=0.0))
    after = float(problem.losses().mean())
    if not after - floor < 0.9 * (before - floor):
        _fail(name, f"300 steps of the loop's step did not lower a quadratic's loss ({before:.4g} -> {after:.4g})")


Quadratic = _Problem  # the conformance problem, for plugin authors' own tests
