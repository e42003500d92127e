"""The quickstart's task: real BANKING77 card messages, vendored with their licence; disjoint splits."""

from __future__ import annotations

from collections import Counter

from zofw_tasks.support import CHOICES, INTENTS, SupportOptions, SupportTickets, data_dir


def load(split: str, seed: int = 42, **options):
    return SupportTickets(SupportOptions(**options)).load(split, seed)


def test_the_data_ships_with_its_licence_and_attribution():
    folder = data_dir()
    assert "Attribution 4.0 International" in (folder / "LICENSE").read_text()
    readme = (folder / "README.md").read_text()
    assert "Casanueva" in readme and "CC BY 4.0" in readme


def test_splits_have_the_documented_sizes_and_every_intent():
    train, test = load("train"), load("eval")
    validation = load("eval", eval_on="validation")
    assert (len(train), len(validation), len(test)) == (863, 160, 320)
    assert Counter(e.label for e in test) == {i: 40 for i in range(len(INTENTS))}
    assert Counter(e.label for e in validation) == {i: 20 for i in range(len(INTENTS))}


def test_no_message_is_in_two_splits_or_twice_in_one():
    def texts(examples):
        return [" ".join(e.prompt.lower().split()) for e in examples]

    train, validation, test = texts(load("train")), texts(load("eval", eval_on="validation")), texts(load("eval"))
    for split in (train, validation, test):
        assert len(set(split)) == len(split)
    assert not set(train) & set(test) and not set(train) & set(validation) and not set(validation) & set(test)


def test_examples_compare_a_real_message_with_the_intent_phrases():
    example = load("eval")[0]
    assert example.choices == CHOICES and example.answers == (CHOICES[example.label],)
    assert len(example.prompt.split()) >= 2  # a real message, not a label


def test_subsampling_is_seeded():
    assert load("train", n_train=100) == load("train", n_train=100)
    assert load("train", n_train=100) != load("train", seed=43, n_train=100)


def test_score_is_accuracy_in_percent():
    examples = load("eval", n_eval=10)
    task = SupportTickets(SupportOptions())
    assert task.score([e.label for e in examples], examples)["accuracy"] == 100.0
    assert task.score([(e.label + 1) % 8 for e in examples], examples)["accuracy"] == 0.0
