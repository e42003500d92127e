"""Metrics shared by tasks: SQuAD-normalised token F1 and exact match (MeZO's DROP/SQuAD metric), accuracy.

Every metric is a percentage (×100), as the papers report them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable, Sequence

from zofw.slots.task import Example, Prediction

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation, drop articles a/an/the, squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Token-level F1 in [0, 1] of the normalised texts (0 when nothing is shared, as SQuAD v1.1)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def answer_line(generated: str) -> str:
    """The answer a generation gives: its first non-empty line (the target ends at a newline)."""
    return generated.strip().split("\n", 1)[0]


def best_over_golds(metric: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    return max((metric(prediction, gold) for gold in golds), default=0.0)


def mean_percent(values: Sequence[float]) -> float:
    return 100.0 * sum(values) / len(values) if values else float("nan")


def require_aligned(predictions: Sequence[Prediction], examples: Sequence[Example]) -> None:
    if len(predictions) != len(examples):  # a model adapter bug, not user input
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")


def generation_scores(predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
    """Token F1 ("f1") and exact match ("em"): the best over each example's gold answers, averaged, ×100."""
    require_aligned(predictions, examples)
    texts = [answer_line(str(prediction)) for prediction in predictions]
    return {
        "f1": mean_percent([best_over_golds(token_f1, t, e.answers) for t, e in zip(texts, examples)]),
        "em": mean_percent([best_over_golds(exact_match, t, e.answers) for t, e in zip(texts, examples)]),
    }


def accuracy(predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
    """Accuracy: the share of predicted choice indices equal to the gold label, ×100."""
    require_aligned(predictions, examples)
    return {"accuracy": mean_percent([float(p == e.label) for p, e in zip(predictions, examples)])}
