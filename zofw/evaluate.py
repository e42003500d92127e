"""Evaluation on held-out examples (never the private training set, so it spends no privacy)."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from zofw.batching import fixed_shape_losses
from zofw.slots.model import ModelAdapter
from zofw.slots.task import Example, Task


def per_example_losses(model: ModelAdapter, items: Sequence[Any], rows: int) -> torch.Tensor:
    """Per-example losses (b,) in forwards of fixed public shapes (see :mod:`zofw.batching`)."""
    return fixed_shape_losses(items, rows, model.sizes, model.max_length, model.losses)


def evaluate(model: ModelAdapter, task: Task, examples: Sequence[Example], encoded: Sequence,
             batch_size: int) -> dict[str, float]:
    """The task's metrics of the model's predictions, plus the mean held-out loss."""
    predictions = model.predict(examples, task.kind, batch_size)
    metrics = task.score(predictions, examples)
    with torch.inference_mode():
        losses = per_example_losses(model, encoded, batch_size)
    metrics["loss"] = float(losses.float().mean()) if len(losses) else float("nan")
    return metrics
