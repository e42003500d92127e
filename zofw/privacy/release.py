"""The private release of one step: clip each example, add noise to the sum, record the event.

Neighbouring relation: add/remove one example. The clipper bounds each example's contribution, so the
L2 sensitivity of the clipped sum is ``clipper.sensitivity(K)``; the noise scale is σ times that.
Dividing by the *expected* batch size (public) rather than the realised one keeps |B| secret.
"""

from __future__ import annotations

import secrets
from typing import Optional

import torch

from zofw.directions import stream_seed
from zofw.privacy.ledger import PrivacyEvent
from zofw.slots.clipper import Clipper
from zofw.slots.estimator import ParameterNoise, PerExample
from zofw.slots.noise import Noise


def secret_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def fresh_secret_seed() -> int:
    """A seed from the OS's cryptographically secure source; never logged."""
    return secrets.randbits(63)


class PrivateRelease:
    """Clip → noise → record, for one private estimator."""

    def __init__(self, clipper: Clipper, noise: Noise, noise_multiplier: float, sample_rate: float,
                 dims: int, secret_seed: int) -> None:
        self.clipper, self.noise = clipper, noise
        self.noise_multiplier, self.sample_rate = noise_multiplier, sample_rate
        self.scale = noise_multiplier * clipper.sensitivity(dims)
        self.secret_seed = secret_seed
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:  # one secret stream per device
            self._generators[key] = secret_generator(stream_seed(self.secret_seed, len(self._generators)), device)
        return self._generators[key]

    def clip(self, measured: PerExample) -> torch.Tensor:
        return self.clipper.clip(measured.values, measured.bound_scale)

    def add_noise(self, total: torch.Tensor) -> torch.Tensor:
        return total + self.noise.sample(total, self.scale, self.generator(total.device))

    def parameter_noise(self, divisor: float) -> ParameterNoise:
        """Noise for every parameter coordinate (DPGD-0th), already divided like the release."""
        return lambda like: self.noise.sample(like, self.scale / divisor, self.generator(like.device))

    def event(self) -> PrivacyEvent:
        return PrivacyEvent(self.noise.mechanism, self.noise_multiplier, self.sample_rate)


class NoPrivacy:
    """The release of a non-private estimator: nothing clipped, no noise, nothing to account."""

    def clip(self, measured: PerExample) -> torch.Tensor:
        return measured.values

    def add_noise(self, total: torch.Tensor) -> torch.Tensor:
        return total

    def parameter_noise(self, divisor: float) -> Optional[ParameterNoise]:
        return None

    def event(self) -> None:
        return None
