"""DP-BiTFiT (Bu et al., ICML 2024): the first-order private baseline, bias terms only.

Each example's gradient with respect to every trainable bias is released as one row of K = (number of
bias elements) values; the release clips each row to L2 norm C over all bias tensors together (clipper
``l2``), adds N(0, σ²C² I_K) and divides by E|B|, exactly as for the zeroth-order family, and an
ordinary torch optimizer (SGD or Adam) takes the step. The gradient of a bias is its layer's output
gradient summed over positions, so the weights need no gradients of their own (they stay frozen); the
per-example gradients come from one backward pass per example through the batch's shared graph.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
from pydantic import Field

from zofw.errors import BadInput
from zofw.params import TrainableParams
from zofw.slots.base import Options
from zofw.slots.estimator import Estimator, LossFn, PerExample, UpdateContext


class BitFitOptions(Options):
    optimizer: Literal["sgd", "adam"] = "sgd"
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    eps: float = Field(1e-8, gt=0)  # Adam


class DPBitFit(Estimator):
    """DP-BiTFiT: per-example bias gradients, clipped over all biases, Gaussian noise, SGD or Adam."""

    name = "dp_bitfit"
    Options = BitFitOptions
    uses_directions = False  # per-example gradients: the step's seed plays no part
    options: BitFitOptions

    def __init__(self, options: BitFitOptions) -> None:
        super().__init__(options)
        self._biases: list[torch.nn.Parameter] = []
        self._optimizer: Optional[torch.optim.Optimizer] = None
        self._size = 0

    def check(self) -> None:
        unread = {"betas", "eps"} & self.options.model_fields_set
        if self.options.optimizer == "sgd" and unread:
            raise BadInput(f"estimator.{sorted(unread)[0]}: only optimizer = \"adam\" reads it (optimizer is sgd)")

    def prepare(self, params: TrainableParams) -> None:
        if not params.names or not all(name.endswith("bias") for name in params.names):
            raise BadInput('estimator \'dp_bitfit\' trains bias terms only: set model.trainable = "bias"')
        if params.module is None:
            raise BadInput("estimator 'dp_bitfit' needs the model's own parameters (a model adapter's trainable())")
        by_name = dict(params.module.named_parameters())
        self._biases = [by_name[name] for name in params.names]
        self._size = params.numel()
        if self.options.optimizer == "adam":
            self._optimizer = torch.optim.Adam(self._biases, lr=1.0, betas=self.options.betas, eps=self.options.eps)
        else:
            self._optimizer = torch.optim.SGD(self._biases, lr=1.0)

    def directions(self) -> int:
        return self._size

    def per_example(self, params: TrainableParams, losses: LossFn, seed: int) -> PerExample:
        with torch.inference_mode(False), torch.enable_grad():
            for bias in self._biases:
                bias.requires_grad_(True)
            try:
                per_example = losses()
                rows = []
                for i in range(len(per_example)):
                    grads = torch.autograd.grad(per_example[i], self._biases, retain_graph=i + 1 < len(per_example),
                                                allow_unused=True)
                    rows.append(torch.cat([(g if g is not None else torch.zeros_like(b)).reshape(-1).double()
                                           for g, b in zip(grads, self._biases)]))
            finally:
                for bias in self._biases:
                    bias.requires_grad_(False)
        values = torch.stack(rows) if rows else torch.zeros(0, self._size, dtype=torch.float64)
        return PerExample(values=values, loss=per_example.detach())

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (Adam's moments and step counts), for checkpoints."""
        return self._optimizer.state_dict() if self._optimizer is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self._optimizer is not None, "prepare() was not called"
        if state:
            self._optimizer.load_state_dict(state)

    def update(self, params: TrainableParams, seed: int, coefficients: torch.Tensor,
               context: UpdateContext) -> None:
        """θ_bias ← optimizer step on the released (clipped, noised, averaged) gradient."""
        assert self._optimizer is not None, "prepare() was not called"
        params.settle()
        offset = 0
        for bias in self._biases:
            count = bias.numel()
            bias.grad = coefficients[offset:offset + count].reshape(bias.shape).to(bias.dtype).detach().clone()
            offset += count
        for group in self._optimizer.param_groups:
            group["lr"] = context.lr
        with torch.no_grad():
            self._optimizer.step()
        for bias in self._biases:
            bias.grad = None
