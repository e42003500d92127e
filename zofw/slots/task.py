"""Tasks: data, prompt and metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Sequence, Union

from zofw.slots.base import Component

TaskKind = Literal["classification", "generation"]
Prediction = Union[int, str]  # a choice index (classification) or generated text (generation)


@dataclass(frozen=True)
class Example:
    """One prompted example, independent of the model family."""

    prompt: str  # text before the answer
    answers: tuple[str, ...]  # gold answers; answers[0] is the training target
    choices: tuple[str, ...] = ()  # candidate answers (classification)
    label: int = -1  # index of the gold choice (classification)
    suffix: str = ""  # text after the answer slot (a masked LM puts its mask between)


class Task(Component):
    """Base class of tasks."""

    kind: ClassVar[TaskKind]
    main_metric: ClassVar[str]

    def load(self, split: Literal["train", "eval"], seed: int) -> list[Example]:
        """Load the examples of ``split``, subsampled with ``seed`` where the options ask for it."""
        raise NotImplementedError

    def evaluates_on_private_data(self) -> bool:
        """Whether the eval split is held out of the private training data without being declared public.

        A private run refuses such a task: its metrics would be un-noised, unaccounted releases."""
        return False

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        """Metrics of ``predictions``; must include ``main_metric``."""
        raise NotImplementedError
