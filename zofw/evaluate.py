"""Evaluation on held-out examples (never the private training set, so it spends no privacy)."""

from __future__ import annotations

from typing import Sequence

import torch

from zofw.slots.model import ModelAdapter
from zofw.slots.task import Example, Task


def evaluate(model: ModelAdapter, task: Task, examples: Sequence[Example], encoded: Sequence,
             batch_size: int) -> dict[str, float]:
    """The task's metrics of the model's predictions, plus the mean held-out loss."""
    predictions = model.predict(examples, task.kind, batch_size)
    metrics = task.score(predictions, examples)
    with torch.inference_mode():
        losses = [model.losses(encoded[i:i + batch_size]) for i in range(0, len(encoded), batch_size)]
    metrics["loss"] = float(torch.cat(losses).float().mean()) if losses else float("nan")
    return metrics
