"""Gradient estimators: how a step turns forward passes into per-example values and an update."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Literal, Optional

import torch

from zofw.params import TrainableParams
from zofw.slots.base import Component

# Per-example losses of the current batch at the current parameters, shape (b,).
LossFn = Callable[[], torch.Tensor]
# Draws privacy noise shaped like a parameter tensor (DPGD-0th adds it in the update pass).
ParameterNoise = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PerExample:
    """What one step measured on each example of its batch."""

    values: torch.Tensor  # (b, K): each example's contribution along the step's K directions
    bound_scale: float = 1.0  # clip values at C·bound_scale so each example moves θ by at most C
    loss: Optional[torch.Tensor] = None  # (b,) loss near θ; private data: never released by the loop


class Estimator(Component):
    """Base class of gradient estimators."""

    # A private estimator's per-example values go through the clipper, the noise and the accountant.
    private: ClassVar[bool] = True
    # Where privacy noise is added: to the released K values ("release"), or to every parameter
    # coordinate in the update pass ("parameters", DPGD-0th).
    noise_space: ClassVar[Literal["release", "parameters"]] = "release"

    def directions(self) -> int:
        """K, the number of values each example contributes per step."""
        return 1

    def per_example(self, params: TrainableParams, losses: LossFn, seed: int) -> PerExample:
        """Probe the loss along the directions drawn from the public ``seed``.

        May leave the parameters displaced: :meth:`update` with the same seed completes the step
        (this lets an estimator fuse the restore with the update and save a pass over the weights).
        """
        raise NotImplementedError

    def update(
        self,
        params: TrainableParams,
        seed: int,
        coefficients: torch.Tensor,
        lr: float,
        weight_decay: float,
        parameter_noise: Optional[ParameterNoise],
    ) -> None:
        """Restore the parameters and take the step θ ← θ − lr·(Σ_k coefficients[k]·u_k + noise + wd·θ)."""
        raise NotImplementedError
