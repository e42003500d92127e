"""Gradient estimators: how a step turns forward passes into per-example values and an update."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal, Optional, Protocol

import torch

from zofw.params import TrainableParams
from zofw.slots.base import Component

# Per-example losses of the current batch at the current parameters, shape (b,).
LossFn = Callable[[], torch.Tensor]
class ParameterNoise(Protocol):
    """Privacy noise for every parameter coordinate. The release hands it only to estimators that declare
    noise_space = "parameters" (DPGD-0th), and checks afterwards that every coordinate got some: call it
    with each parameter tensor (noise shaped like it), or take ``term(params)`` = (key, scale) as one
    more term of a fused ``zofw.directions.axpy_`` pass over all of them."""

    def __call__(self, like: torch.Tensor) -> torch.Tensor: ...

    def term(self, params: TrainableParams) -> tuple[int, float]: ...


@dataclass
class PerExample:
    """What one step measured on each example of its batch."""

    values: torch.Tensor  # (b, K): each example's contribution along the step's K directions
    bound_scale: float = 1.0  # clip values at C·bound_scale so each example moves θ by at most C
    loss: Optional[torch.Tensor] = None  # (b,) loss near θ; private data: never released by the loop


@dataclass(frozen=True)
class UpdateContext:
    """Everything an update needs besides the coefficients; new fields never break a plugin's signature."""

    step: int  # 1-based step number
    lr: float  # step size η of this step
    weight_decay: float  # not applied to biases and normalisation weights (TrainableParams.decay)
    # Noise to add to every parameter coordinate, already scaled like the coefficients (θ ← θ − η·noise).
    # None unless the estimator declares noise_space = "parameters": the release decides, not the estimator.
    parameter_noise: Optional[ParameterNoise] = None


class Estimator(Component):
    """Base class of gradient estimators."""

    # A private estimator's per-example values go through the clipper, the noise and the accountant.
    private: ClassVar[bool] = True
    # Where the release adds privacy noise: to the K released values ("release": DPZero), or to every
    # parameter coordinate in the update pass ("parameters": DPGD-0th). The release reads this
    # declaration; an estimator never adds or skips noise itself.
    noise_space: ClassVar[Literal["release", "parameters"]] = "release"
    # The noise mechanism its privacy statement needs (e.g. "laplace" for pure ε-DP), or None for any:
    # the release refuses a recipe whose noise is another one.
    requires_mechanism: ClassVar[Optional[str]] = None
    # Whether it probes with λ × ``smoothing_factor`` (set by the loop from the schedule each step); a
    # schedule that changes λ is refused for an estimator that does not declare this.
    follows_smoothing_schedule: ClassVar[bool] = False
    # Whether its values are measured along public directions drawn from the step's seed (zeroth-order);
    # False for a first-order estimator (DP-BiTFiT), whose values are gradients and ignore the seed.
    uses_directions: ClassVar[bool] = True
    smoothing_factor: float = 1.0

    def prepare(self, params: TrainableParams) -> None:
        """Called once with the run's trainable parameters, before ``directions()`` is read (an estimator
        whose K depends on them, or that keeps optimizer state, sets itself up here)."""

    def directions(self) -> int:
        """K, the number of values each example contributes per step."""
        return 1

    def state_dict(self) -> dict[str, Any]:
        """State that updates carry from step to step (e.g. an optimizer's moments), for checkpoints;
        zeroth-order estimators keep none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called after :meth:`prepare`)."""
        if state:
            raise NotImplementedError(f"estimator '{self.name}' saved state but cannot load it")

    def per_example(self, params: TrainableParams, losses: LossFn, seed: int) -> PerExample:
        """Probe the loss along the directions drawn from the public ``seed``.

        May leave the parameters displaced: :meth:`update` with the same seed completes the step
        (this lets an estimator fuse the restore with the update and save a pass over the weights).
        """
        raise NotImplementedError

    def update(self, params: TrainableParams, seed: int, coefficients: torch.Tensor,
               context: UpdateContext) -> None:
        """Restore the parameters and step θ ← θ − lr·(Σ_k coefficients[k]·u_k + noise + wd·θ).

        ``coefficients`` (K,) are the released, privatised values already divided by the expected batch
        size; ``context.parameter_noise`` is set only for estimators with noise_space = "parameters".
        """
        raise NotImplementedError
