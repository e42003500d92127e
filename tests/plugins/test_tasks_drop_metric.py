"""The official DROP metric on worked examples of the official evaluator's behaviour (each worked by hand
from its rules: per-token normalisation, numbers as floats, bags of spans aligned one to one, number
agreement, best over annotators, F1 rounded to 2 decimals), and the DROP task's four numbers."""

from __future__ import annotations

import pytest

from zofw.slots.task import Example
from zofw_tasks.drop import Drop, DropExample, DropOptions
from zofw_tasks.drop_metric import best_drop_em_f1, drop_em_f1, normalize_span


@pytest.mark.parametrize("span, normalised", [
    ("2", "2.0"), ("2.0", "2.0"), ("02", "2.0"), ("two", "two"),  # numbers as floats; number words stay words
    ("1,000", "1000.0"),  # punctuation goes from a non-number, and what is left may parse
    ("$2.5", "25.0"),  # …so the dot of "$2.5" goes too: the evaluator's quirk, kept
    ("26-yard", "26.0 yard"),  # hyphens split tokens (SQuAD's normalisation gives "26yard")
    ("The Bears.", "bears"), ("an apple, a day", "apple day"),  # articles and punctuation
    ("7 July 1345", "7.0 july 1345.0"), ("July 7, 1345", "july 7.0 1345.0"),  # dates: tokens, not dates
])
def test_normalisation(span, normalised):
    assert normalize_span(span) == normalised


@pytest.mark.parametrize("prediction, gold, em, f1", [
    # numbers
    ("2", ["2.0"], 1.0, 1.0),
    ("2.0", ["2"], 1.0, 1.0),
    ("two", ["2"], 0.0, 0.0),  # gold has a number the prediction lacks
    ("2", ["two"], 0.0, 0.0),  # no number in gold, but no shared token either
    ("2 touchdowns", ["2"], 0.0, 0.67),  # P = 1/2, R = 1: F1 2/3, rounded
    ("3 yards", ["2 yards"], 0.0, 0.0),  # "yards" is shared, but the numbers differ: F1 0, not 1/2
    ("1,000 fans", ["1000"], 0.0, 0.67),
    # articles and punctuation
    ("The Bears.", ["bears"], 1.0, 1.0),
    ("the New England Patriots!", ["New England Patriots"], 1.0, 1.0),
    # dates
    ("July 7, 1345", ["7 July 1345"], 0.0, 1.0),  # same tokens, other order: not exact, full F1
    ("July 1345", ["7 July 1345"], 0.0, 0.8),  # shares 1345: P = 1, R = 2/3
    ("1344", ["June 1344"], 0.0, 0.67),
    # multi-span answers: one predicted span against a bag of two
    ("Marshawn Lynch", ["Marshawn Lynch", "Benjamin Watson"], 0.0, 0.5),  # (1 + 0) / 2
    ("Marshawn Lynch and Benjamin Watson", ["Marshawn Lynch", "Benjamin Watson"], 0.0, 0.29),  # (4/7 + 0) / 2
    (["Benjamin Watson", "Marshawn Lynch"], ["Marshawn Lynch", "Benjamin Watson"], 1.0, 1.0),  # order is free
    (["Marshawn Lynch", "Benjamin Watson", "Tom Brady"], ["Marshawn Lynch", "Benjamin Watson"], 0.0, 0.67),  # extra
    (["Lynch", "Watson"], ["Marshawn Lynch", "Benjamin Watson"], 0.0, 0.67),  # best alignment: 2/3 + 2/3
    (["Watson", "Lynch"], ["Marshawn Lynch", "Benjamin Watson"], 0.0, 0.67),  # found whatever the order
    # nothing
    ("", ["3"], 0.0, 0.0),
])
def test_worked_examples(prediction, gold, em, f1):
    assert drop_em_f1(prediction, gold) == (em, pytest.approx(f1))


def test_best_over_annotators_and_blank_answers_are_not_scored():
    answers = [("2",), ("two",), ("",)]  # the answer, two validated answers (one blank)
    assert best_drop_em_f1("two", answers) == (1.0, 1.0)
    assert best_drop_em_f1("2 points", answers) == (0.0, 0.67)
    assert best_drop_em_f1("anything", [("",)]) == (0.0, 0.0)


def test_drop_task_reports_mezo_and_official_numbers_each_named():
    task = Drop(DropOptions())
    examples = [
        DropExample("p1", (" 2\n",), answer_sets=(("2",),)),
        DropExample("p2", (" Marshawn Lynch\n", " Benjamin Watson\n"),
                    answer_sets=(("Marshawn Lynch", "Benjamin Watson"),)),
        Example("p3", (" 3 yards\n",)),  # a plain Example: each answer a bag of its own
    ]
    scores = task.score([" 2.0\nQuestion: more", "Marshawn Lynch", "2 yards"], examples)
    assert set(scores) == {"f1", "em", "drop_f1", "drop_em"}
    # MeZO's F1 (SQuAD normalisation, best single gold span): "2.0" vs "2" 0; 1; "2 yards" vs "3 yards" 1/2
    assert scores["f1"] == pytest.approx(100 * (0 + 1 + 0.5) / 3)
    assert scores["em"] == pytest.approx(100 * 1 / 3)
    # official: 1; bag of two, one found (0.5); numbers disagree (0)
    assert scores["drop_em"] == pytest.approx(100 * 1 / 3)
    assert scores["drop_f1"] == pytest.approx(100 * (1 + 0.5 + 0) / 3)
