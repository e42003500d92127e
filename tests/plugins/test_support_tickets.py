"""The quickstart's own task: deterministic, disjoint splits, four balanced-ish teams."""

from __future__ import annotations

from collections import Counter

from zofw_tasks.support import CHOICES, PROBLEMS, SupportOptions, SupportTickets


def load(split: str, seed: int = 42, **options):
    return SupportTickets(SupportOptions(**options)).load(split, seed)


def test_deterministic_per_seed_and_different_across_seeds():
    assert load("train") == load("train")
    assert load("train") != load("train", seed=43)


def test_train_and_eval_share_no_problem_sentence():
    def problems(examples):
        return {p for e in examples for team in PROBLEMS.values() for p in team if p in e.prompt}

    assert not problems(load("train", n_train=500)) & problems(load("eval", n_eval=500))


def test_labels_match_the_problem_and_all_teams_appear():
    examples = load("eval", n_eval=400)
    for example in examples:
        team = list(PROBLEMS)[example.label]
        assert any(problem in example.prompt for problem in PROBLEMS[team])
        assert example.choices == CHOICES and example.answers == (CHOICES[example.label],)
    assert min(Counter(e.label for e in examples).values()) > 60


def test_score_is_accuracy_in_percent():
    examples = load("eval", n_eval=10)
    task = SupportTickets(SupportOptions())
    assert task.score([e.label for e in examples], examples)["accuracy"] == 100.0
    assert task.score([(e.label + 1) % 4 for e in examples], examples)["accuracy"] == 0.0
