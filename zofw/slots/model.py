"""Model adapters: turn examples into per-example losses and predictions."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from zofw.params import TrainableParams
from zofw.slots.base import Component
from zofw.slots.task import Example, Prediction, TaskKind


class ModelAdapter(Component):
    """Base class of model adapters."""

    def load(self, kind: TaskKind) -> None:
        """Load weights and tokenizer for a task of ``kind``; raise BadInput if it is unsupported."""
        raise NotImplementedError

    def trainable(self) -> TrainableParams:
        """The parameters an estimator perturbs and updates."""
        raise NotImplementedError

    def encode(self, examples: Sequence[Example]) -> list[Any]:
        """Tokenize examples once; the loop batches the encoded items."""
        raise NotImplementedError

    def losses(self, batch: Sequence[Any]) -> torch.Tensor:
        """Per-example losses (b,) of encoded items, forward only, in eval mode."""
        raise NotImplementedError

    def predict(self, examples: Sequence[Example], kind: TaskKind, batch_size: int) -> list[Prediction]:
        """Predict a choice index (classification) or text (generation) for each example."""
        raise NotImplementedError
