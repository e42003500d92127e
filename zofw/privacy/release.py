"""The private release of one step: the only path from private data to anything a run outputs.

Order, fixed here for every estimator: record the event in the ledger (on disk first) → replace
non-finite values → clip each example → sum in float64 → add noise where the estimator declares it →
divide by the expected batch size.

Neighbouring relation: the sampling scheme's (``zofw.sampling``): add/remove one example for Poisson
batches, replace one for fixed-size batches. Sensitivity: replacing every non-finite value by 0 (a
fixed rule that looks at no other example) keeps each row finite, so the clipper bounds each example's
contribution by ``clipper.sensitivity(K, noise.sensitivity_norm)``; adding or removing one example moves
the sum by at most that, replacing one by twice that (``Sampling.sensitivity_factor``). The noise scale
is σ times the sum's sensitivity, and the ledger event names the relation, the norm and the scheme.
Dividing by the *expected* batch size (public) rather than the realised one keeps |B| secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch

from zofw.directions import stream_seed
from zofw.errors import BadInput, RunFailed
from zofw.params import TrainableParams
from zofw.privacy.ledger import PrivacyEvent, PrivacyLedger
from zofw.privacy.secure import SecretStream
from zofw.sampling import Sampling
from zofw.slots.clipper import Clipper
from zofw.slots.estimator import Estimator, PerExample
from zofw.slots.noise import Noise


def finite_values(values: torch.Tensor) -> torch.Tensor:
    """float64 copy of ``values`` with every NaN and ±inf replaced by 0, whatever the other values are."""
    values = values.detach().to(torch.float64)
    return torch.where(torch.isfinite(values), values, torch.zeros((), dtype=torch.float64, device=values.device))


class BulkParameterNoise:
    """d-dimensional Gaussian noise for parameter-space estimators, counted.

    Keyed once per step by a fresh 64-bit value from the secret stream. A fused update takes it as one
    more term of its pass (:meth:`term`: the counter-based Philox generator of ``zofw.kernels`` keyed by
    that value, so an attacker faces a 64-bit key per step on CPU and GPU alike); an estimator that
    works tensor by tensor calls the object instead (torch generators keyed from it). The count lets
    the release check that every trainable coordinate was noised exactly once.
    """

    def __init__(self, noise: Noise, scale: float, step_key: int) -> None:
        self.noise, self.scale, self.step_key = noise, scale, step_key
        self.calls = 0
        self.drawn = 0

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator(device=like.device)
        generator.manual_seed(stream_seed(self.step_key, self.calls))
        self.calls += 1
        self.drawn += like.numel()
        return self.noise.sample_like(like, self.scale, generator)

    def term(self, params: TrainableParams) -> tuple[int, float]:
        """(key, scale) of N(0, scale²) noise on every coordinate, for one fused pass over ``params``."""
        if self.noise.mechanism != "gaussian":
            raise RunFailed(f"noise '{self.noise.name}' cannot be fused into a parameter pass (Gaussian only)")
        self.drawn += params.numel()
        return self.step_key, self.scale


@dataclass
class Released:
    """The outcome of one step's release."""

    coefficients: torch.Tensor  # (K,) float64, what the update steps along the directions with
    public: Optional[torch.Tensor]  # what may be logged: the noised coefficients, or None
    parameter_noise: Optional[BulkParameterNoise] = None  # set only for noise_space = "parameters"
    nonfinite: Optional[int] = None  # count of replaced values; None when it would be a private statistic

    def check_complete(self, params: TrainableParams) -> None:
        """After the update: parameter-space noise reached every trainable coordinate exactly once."""
        if self.parameter_noise is not None and self.parameter_noise.drawn != params.numel():
            raise RunFailed(f"the estimator declares noise_space = 'parameters' but its update drew noise for "
                            f"{self.parameter_noise.drawn} of {params.numel()} trainable coordinates")


def check_mechanism(estimator: Estimator, noise: Noise) -> None:
    """An estimator whose privacy statement needs one mechanism (DP-ZO: Laplace) gets that one or none."""
    if estimator.requires_mechanism not in (None, noise.mechanism):
        raise BadInput(f"noise.name: estimator '{estimator.name}' needs {estimator.requires_mechanism} noise, "
                       f"the recipe gives '{noise.name}' ({noise.mechanism})")


class PrivateRelease:
    """Clip → noise → account, for one private estimator; noise goes where the estimator declares."""

    def __init__(self, clipper: Clipper, noise: Noise, noise_multiplier: float, sampling: Sampling | float,
                 estimator: Estimator, divisor: float, source: SecretStream,
                 ledger: PrivacyLedger, ledger_path: Optional[Path] = None,
                 parameter_count: Optional[int] = None) -> None:
        self.noise_space: Literal["release", "parameters"] = estimator.noise_space
        if self.noise_space == "parameters" and type(noise).sample_like is Noise.sample_like:
            raise BadInput(f"noise.name: estimator '{estimator.name}' adds noise to the parameters, which "
                           f"noise '{noise.name}' cannot do")
        check_mechanism(estimator, noise)
        self.clipper, self.noise, self.source = clipper, noise, source
        # a bare rate q: Poisson sampling at q
        self.noise_multiplier, self.divisor = noise_multiplier, divisor
        self.sampling = sampling = Sampling.coerce(sampling)
        self.dims = estimator.directions()
        if noise.max_dims is not None and self.dims > noise.max_dims:
            raise BadInput(f"noise.name: noise '{noise.name}' privatises at most {noise.max_dims} value(s) per "
                           f"step; estimator '{estimator.name}' releases {self.dims}")
        # the sum's sensitivity: one example's clipped contribution, twice that under replace-one
        sensitivity = clipper.sensitivity(self.dims, noise.sensitivity_norm) * sampling.sensitivity_factor
        self.scale = noise_multiplier * sensitivity
        # what a step releases: K values, or a d-vector when the noise goes into the parameters
        self.dimension = parameter_count if self.noise_space == "parameters" and parameter_count else self.dims
        self.ledger, self.ledger_path = ledger, ledger_path

    def event(self) -> PrivacyEvent:
        return self.noise.event(self.noise_multiplier, self.sampling, dimension=self.dimension)

    def clipped_sum(self, measured: PerExample) -> torch.Tensor:
        """Σ_i clip(finite(values_i)) in float64, over the example dimension (-2); leading dims are kept."""
        # the noise was calibrated for K = directions() values clipped at C: anything wider or looser
        # would be under-noised, so it stops the run rather than pass
        if measured.values.shape[-1] != self.dims:
            raise RunFailed(f"the estimator declared {self.dims} direction(s) but returned "
                            f"{measured.values.shape[-1]} values per example")
        if not 0 < measured.bound_scale <= 1:
            raise RunFailed(f"the estimator's bound_scale {measured.bound_scale} is outside (0, 1]: "
                            "the noise is calibrated for a clip at C")
        return self.clipper.clip(finite_values(measured.values), measured.bound_scale).sum(-2)

    def noised(self, total: torch.Tensor) -> torch.Tensor:
        """``total`` plus noise of scale σ·sensitivity drawn from the secure source."""
        return self.noise.add_to(total, self.noise_multiplier, self.scale / self.noise_multiplier, self.source)

    def privatize(self, measured: PerExample) -> Released:
        # the ledger reaches the disk before the value it accounts for exists
        self.ledger.record(self.event())
        if self.ledger_path is not None:
            self.ledger.save(self.ledger_path)
        total = self.clipped_sum(measured)
        if self.noise_space == "release":
            coefficients = self.noised(total) / self.divisor
            return Released(coefficients, public=coefficients)
        # parameters: the released vector is (Σ clip(d_i)·u + N(0, σ²C² I_d)) / b; the scalar alone is
        # never released, so nothing of it is logged
        noise = BulkParameterNoise(self.noise, self.scale / self.divisor, self.source.seed64())
        return Released(total / self.divisor, public=None, parameter_noise=noise)


class NoPrivacy:
    """The release of a non-private estimator: non-finite values dropped, nothing clipped, no noise."""

    def __init__(self, divisor: float, directions: Optional[int] = None) -> None:
        self.divisor, self.directions = divisor, directions

    def privatize(self, measured: PerExample) -> Released:
        if self.directions is not None and measured.values.shape[-1] != self.directions:
            raise RunFailed(f"the estimator declared {self.directions} direction(s) but returned "
                            f"{measured.values.shape[-1]} values per example")
        values = finite_values(measured.values)
        nonfinite = int((~torch.isfinite(measured.values)).sum())
        coefficients = values.sum(-2) / self.divisor
        return Released(coefficients, public=coefficients, nonfinite=nonfinite)
