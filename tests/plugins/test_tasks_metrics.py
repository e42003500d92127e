from __future__ import annotations

import pytest

from zofw.slots.task import Example
from zofw_tasks.metrics import (accuracy, answer_line, exact_match, generation_scores, normalize_answer,
                                token_f1)


@pytest.mark.parametrize("text, normalised", [
    ("  The Eiffel   Tower. ", "eiffel tower"),  # article, punctuation, spaces
    ("An apple, a day!", "apple day"),
    ("MATTHEW Stafford", "matthew stafford"),  # casing
    ("theatre", "theatre"),  # articles only as whole words
    ("26-yard", "26yard"),  # punctuation is deleted, not split on (SQuAD v1.1)
])
def test_squad_normalisation(text, normalised):
    assert normalize_answer(text) == normalised


def test_token_f1_by_hand():
    # pred {red, car} vs gold {red, truck}: one shared token, P = 1/2, R = 1/2, F1 = 1/2
    assert token_f1("the red car", "red truck") == pytest.approx(0.5)
    # pred {red} vs gold {red, truck}: P = 1, R = 1/2, F1 = 2/3
    assert token_f1("Red.", "red truck") == pytest.approx(2 / 3)
    assert token_f1("The Bears", "bears!") == 1.0
    assert token_f1("nothing", "red truck") == 0.0
    assert token_f1("the", "a") == 0.0  # both empty after normalisation: 0, as SQuAD v1.1


def test_exact_match_after_normalisation():
    assert exact_match(" The Bears.", "bears") == 1.0
    assert exact_match("bears", "the bear") == 0.0


def test_a_generation_is_cut_at_its_first_line():
    assert answer_line("\n Matthew Stafford\nQuestion: who else?") == "Matthew Stafford"


def test_generation_scores_take_the_best_gold_and_average_in_percent():
    examples = [Example("q1", (" Matthew Stafford",)),
                Example("q2", (" 3",)),
                Example("q3", (" red truck", " the red car"))]
    predictions = [" Matthew Stafford\nQuestion: who caught it?", "3 points", "red car"]
    scores = generation_scores(predictions, examples)
    # F1 per example: 1, 2/3 (P = 1/2, R = 1), 1 (the second gold); EM: 1, 0, 1
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1) / 3)
    assert scores["em"] == pytest.approx(100 * 2 / 3)


def test_accuracy_in_percent():
    examples = [Example("x", (" great",), (" terrible", " great"), 1)] * 3
    assert accuracy([1, 0, 1], examples) == {"accuracy": pytest.approx(200 / 3)}


def test_misaligned_predictions_are_a_bug():
    with pytest.raises(ValueError, match="2 predictions for 1 examples"):
        accuracy([0, 1], [Example("x", (" great",), (" terrible", " great"), 1)])
