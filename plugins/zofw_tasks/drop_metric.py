"""The official DROP metric (Dua et al., 2019): exact match and F1 over bags of answer spans.

Written from the official evaluator's documented behaviour, which is stricter than MeZO's SQuAD F1:
- normalisation works token by token, splitting on spaces and hyphens ("26-yard" is "26 yard"); a token
  that parses as a number keeps its punctuation and is written as a float ("2", "2.0", "02" are all
  "2.0"), any other token loses its punctuation ("1,000" then parses: "1000.0"); then articles go. Number
  words are not numbers: "two" never matches "2".
- an answer is a bag of spans (a multi-span answer has several); EM needs the same set of normalised spans;
  F1 aligns predicted and gold spans one to one (the assignment with the highest total F1) and averages
  the span F1s over max(#gold, #predicted) spans, so a missing or an extra span costs.
- a span pair whose gold mentions numbers scores 0 unless the prediction shares one of them.
- each question takes the best over its annotators' answers (the answer and the validated answers); the
  per-question F1 is rounded to 2 decimals, as the evaluator does.
"""

from __future__ import annotations

import re
import string
from typing import Sequence, Union

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_TOKEN_SEPARATORS = re.compile(" |-")  # only these two: other whitespace stays inside a token until the end


def is_number(token: str) -> bool:
    """Whether Python's float() parses the token: the evaluator's own test (so "1e3", "nan" count too)."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def normalize_token(token: str) -> str:
    token = token.lower()
    if is_number(token):
        token = str(float(token))  # "2" -> "2.0"; the dot of a number is kept
    else:
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
        if is_number(token):  # "1,000" -> "1000" -> "1000.0"; "$2.5" -> "25" -> "25.0" (the evaluator's quirk)
            token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize_span(span: str) -> str:
    return " ".join(part for part in map(normalize_token, _TOKEN_SEPARATORS.split(span)) if part)


def bag_f1(predicted: frozenset, gold: frozenset) -> float:
    """F1 of two token sets (sets: a repeated token counts once); an empty side has precision/recall 1."""
    shared = len(predicted & gold)
    precision = shared / len(predicted) if predicted else 1.0
    recall = shared / len(gold) if gold else 1.0
    return 0.0 if precision == 0.0 and recall == 0.0 else 2 * precision * recall / (precision + recall)


def numbers_agree(gold: frozenset, predicted: frozenset) -> bool:
    """True unless the gold span has numbers and the prediction shares none of them."""
    gold_numbers = {token for token in gold if is_number(token)}
    return not gold_numbers or bool(gold_numbers & {token for token in predicted if is_number(token)})


def aligned_f1(predicted: Sequence[frozenset], gold: Sequence[frozenset]) -> float:
    """Mean span F1 under the best one-to-one alignment, over max(#gold, #predicted) slots."""
    if not predicted or not gold:
        return 0.0
    scores = [[bag_f1(p, g) if numbers_agree(g, p) else 0.0 for p in predicted] for g in gold]
    from scipy.optimize import linear_sum_assignment  # scipy comes with the accountants zofw depends on

    rows, columns = linear_sum_assignment(scores, maximize=True)
    total = sum(scores[row][column] for row, column in zip(rows, columns))
    return total / max(len(gold), len(predicted))


def drop_em_f1(prediction: Union[str, Sequence[str]], gold: Sequence[str]) -> tuple[float, float]:
    """EM and F1 in [0, 1] of a prediction (one span, or several) against one gold answer (its spans)."""
    spans = [prediction] if isinstance(prediction, str) else list(prediction)
    predicted, expected = [normalize_span(s) for s in spans], [normalize_span(s) for s in gold]
    exact = float(set(predicted) == set(expected) and len(predicted) == len(expected))
    f1 = aligned_f1([frozenset(s.split()) for s in predicted], [frozenset(s.split()) for s in expected])
    return exact, round(f1, 2)


def best_drop_em_f1(prediction: Union[str, Sequence[str]], answers: Sequence[Sequence[str]]) -> tuple[float, float]:
    """The best EM and the best F1 over the annotators' answers (each may be best on its own); an answer
    whose first span is blank is not scored, as in the evaluator."""
    scored = [drop_em_f1(prediction, answer) for answer in answers if answer and answer[0].strip()]
    return max((em for em, _ in scored), default=0.0), max((f1 for _, f1 in scored), default=0.0)
