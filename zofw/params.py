"""The trainable subset of a model's parameters, with the global element offsets directions index by."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

# Weight decay is not applied to biases and normalisation weights (as in MeZO and DPZero).
_NO_DECAY = re.compile(r"(^|\.)bias$|layer_?norm|LayerNorm|\bln\b|norm\.weight$")


@dataclass
class TrainableParams:
    """Named tensors an estimator perturbs, in a fixed order.

    Element j of tensor i has the global index ``offsets[i] + j``: a direction element is a function of
    (seed, global index) alone (``zofw.kernels``). When all tensors share a dtype and device they are
    views into one contiguous buffer ``flat``, so a pass over every weight is one kernel launch.
    """

    names: list[str]
    tensors: list[torch.Tensor]
    module: Optional[torch.nn.Module] = None  # the model that owns them: lets forwards see θ + λu just in time
    decay: list[bool] = field(init=False)  # whether weight decay applies, per tensor (fixed once)
    offsets: list[int] = field(init=False)
    flat: Optional[torch.Tensor] = field(init=False, default=None)
    _owners: Optional[list] = field(init=False, default=None, repr=False)  # computed once: perturbed() runs every step
    _just_in_time: Optional[Any] = field(init=False, default=None, repr=False)  # its hooks, installed once

    def __post_init__(self) -> None:
        self.decay = [not _NO_DECAY.search(n) for n in self.names]
        self.offsets, total = [], 0
        for tensor in self.tensors:
            self.offsets.append(total)
            total += tensor.numel()

    @classmethod
    def select(cls, module: torch.nn.Module, pattern: str) -> "TrainableParams":
        """Parameters whose name matches ``pattern``: "all", "bias" or a regular expression."""
        regex = {"all": r".*", "bias": r"(^|\.)bias$"}.get(pattern, pattern)
        chosen = [(n, p) for n, p in module.named_parameters() if re.search(regex, n)]
        params = cls([n for n, _ in chosen], [p.data for _, p in chosen], module)
        params._flatten([p for _, p in chosen])
        return params

    def _flatten(self, parameters: list[torch.nn.Parameter]) -> None:
        """Move the tensors into one contiguous buffer, one at a time (peak: one copy of the subset)."""
        if not parameters or len({(p.dtype, p.device) for p in parameters}) != 1:
            return
        flat = torch.empty(self.numel(), dtype=parameters[0].dtype, device=parameters[0].device)
        for index, parameter in enumerate(parameters):
            view = flat[self.offsets[index]:self.offsets[index] + parameter.numel()].view_as(parameter)
            view.copy_(parameter.data)
            parameter.data = view  # every module that shares this Parameter (tied weights) sees the view
            self.tensors[index] = view
        self.flat = flat

    def numel(self) -> int:
        return sum(t.numel() for t in self.tensors)

    def owners(self) -> list[tuple[torch.nn.Module, list[tuple[str, int]]]]:
        """Each module holding trainable parameters directly, with (attribute, tensor index) pairs."""
        if self.module is None:
            return []
        if self._owners is not None:
            return self._owners
        index_of = {tensor.data_ptr(): i for i, tensor in enumerate(self.tensors)}
        found = []
        for sub in self.module.modules():
            held = [(name, index_of[p.data_ptr()]) for name, p in sub._parameters.items()
                    if p is not None and p.data_ptr() in index_of and p.numel() == self.tensors[index_of[p.data_ptr()]].numel()]
            if held:
                found.append((sub, held))
        self._owners = found
        return found

    def just_in_time(self) -> Any:
        """The model's just-in-time perturbation hooks (``zofw.just_in_time``), installed on first use."""
        if self._just_in_time is None:
            from zofw.just_in_time import JustInTime

            self._just_in_time = JustInTime(self)
        return self._just_in_time

    def current_rows(self, parameter: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Rows of a 2-D ``parameter`` (elements of a 1-D one) as a forward sees them now: inside a probe
        θ + αu of those rows only (``JustInTime.rows``), any pending update applied; a tensor that is not
        trainable is indexed as it is. For a head that scores a few vocabulary columns."""
        width = parameter.shape[-1] if parameter.dim() == 2 else 1
        index = next((i for i, t in enumerate(self.tensors)
                      if t.data_ptr() == parameter.data_ptr() and t.numel() == parameter.numel()), None)
        if index is None or self.module is None or not self.owners():
            return parameter.reshape(-1, width)[rows].reshape(*rows.shape, *parameter.shape[1:])
        return self.just_in_time().rows(index, rows, width).reshape(*rows.shape, *parameter.shape[1:])

    def snapshot(self) -> list[torch.Tensor]:
        """A copy of every trainable tensor (memory: one copy of the trainable subset)."""
        self.settle()
        return [tensor.detach().clone() for tensor in self.tensors]

    def pull_toward_(self, anchor: list[torch.Tensor], weight: float) -> None:
        """θ ← θ − weight·(θ − anchor), in place (a proximal step toward an earlier iterate)."""
        self.settle()
        for tensor, target in zip(self.tensors, anchor):
            tensor.lerp_(target, weight)

    def settle(self) -> None:
        """Apply an update still pending (see ``zofw.just_in_time``): call before reading θ directly."""
        if self._just_in_time is not None:
            self._just_in_time.settle()

    def deferred_updates(self) -> Any:
        """Context in which updates are fused into the next probe's pass; everything is settled on exit."""
        return self.just_in_time().deferring()

    def forget_layout(self) -> None:
        """Call after moving the tensors' storage: the module map and the hooks are rebuilt on next use."""
        if self._just_in_time is not None:
            self._just_in_time.settle()
            self._just_in_time.remove()
        self._owners = self._just_in_time = None
