"""Model adapters: turn examples into per-example losses and predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from zofw.params import TrainableParams
from zofw.slots.base import Component
from zofw.slots.task import Example, Prediction, TaskKind


class ModelAdapter(Component):
    """Base class of model adapters.

    Batch independence (what the privacy guarantee needs): an example's loss must depend on that example
    alone, bitwise. The loop makes sure of the shapes (:mod:`zofw.batching`): it groups items by their
    own :meth:`sizes` and calls :meth:`losses` with a fixed public shape; the adapter pads to exactly
    that shape (dummy rows masked) and computes nothing across rows.
    """

    # Largest size an item can have (tokens); caps the public width ladder. None: no cap.
    max_length: Optional[int] = None

    def load(self, kind: TaskKind) -> None:
        """Load weights and tokenizer for a task of ``kind``; raise BadInput if it is unsupported."""
        raise NotImplementedError

    def trainable(self) -> TrainableParams:
        """The parameters an estimator perturbs and updates."""
        raise NotImplementedError

    def encode(self, examples: Sequence[Example]) -> list[Any]:
        """Tokenize examples once; the loop batches the encoded items."""
        raise NotImplementedError

    def sizes(self, item: Any) -> tuple[int, ...]:
        """The item's own sizes (e.g. its tokens; its target tokens), each rounded up a public ladder to
        pick the shape of its forward. Empty: every item fits one shape."""
        return ()

    def losses(self, batch: Sequence[Any], shape: tuple[int, ...]) -> torch.Tensor:
        """Per-example losses (b,) of at most ``shape[0]`` items, forward only, in eval mode, computed in
        a forward of exactly ``shape`` = (rows, *widths) with widths ≥ the items' :meth:`sizes`."""
        raise NotImplementedError

    def save_trained(self, directory: Path) -> bool:
        """Write what training changed, in the format its ecosystem loads (e.g. a peft adapter); return
        whether anything was written. Default: nothing (issue: saved full fine-tunes)."""
        return False

    def predict(self, examples: Sequence[Example], kind: TaskKind, batch_size: int) -> list[Prediction]:
        """Predict a choice index (classification) or text (generation) for each example."""
        raise NotImplementedError
