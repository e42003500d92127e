"""SQuAD: the official JSON format, MeZO's prompt and target, held-out articles, the hub, and the metric."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from zofw.plugins import registries
from zofw_tasks.sampling import in_eval_part
from zofw_tasks.squad import Squad, SquadOptions

CONTEXT = "Super Bowl 50 was an American football game. The Denver Broncos defeated the Carolina Panthers 24-10."


def squad_file(path: Path, articles: int = 1, version: str = "1.1") -> str:
    """A file in the official layout; article 0 holds the worked questions."""
    qas = [
        {"id": "q1", "question": " Who won Super Bowl 50? ", "answers": [
            {"text": "Denver Broncos", "answer_start": 66}, {"text": "The Denver Broncos", "answer_start": 62},
            {"text": "Denver Broncos", "answer_start": 66}]},  # annotators repeat answers: counted once
        {"id": "q2", "question": "Who lost?", "answers": [{"text": "Carolina Panthers", "answer_start": 93}]},
        {"id": "q3", "question": "Who sang?", "answers": [], "is_impossible": True},  # SQuAD 2.0: dropped
    ]
    data = [{"title": "Super_Bowl_50", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]
    data += [{"title": f"Article_{i}", "paragraphs": [{"context": f"Text {i}.", "qas": [
        {"id": f"a{i}", "question": f"Which {i}?", "answers": [{"text": f"Text {i}", "answer_start": 0}]}]}]}
        for i in range(1, articles)]
    path.write_text(json.dumps({"version": version, "data": data}))
    return str(path)


def test_registered_as_generation_with_f1():
    entry = registries()["tasks"].get("squad")
    assert entry.component is Squad and Squad.kind == "generation" and Squad.main_metric == "f1"


def test_prompt_target_and_golds(tmp_path):
    path = squad_file(tmp_path / "dev.json", version="v2.0")
    examples = Squad(SquadOptions(path=path, eval_path=path)).load("eval", 0)
    assert len(examples) == 2  # the unanswerable question is not an example
    first = examples[0]
    assert first.prompt == f"Title: Super_Bowl_50\nContext: {CONTEXT}\nQuestion: Who won Super Bowl 50?\nAnswer:"
    assert first.answers == (" Denver Broncos\n", " The Denver Broncos\n")  # target first, then other golds
    assert first.choices == () and first.suffix == ""


def test_score_is_squad_f1_and_em_best_over_golds(tmp_path):
    path = squad_file(tmp_path / "dev.json")
    task = Squad(SquadOptions(path=path, eval_path=path))
    examples = task.load("eval", 0)
    assert task.score([e.answers[0] for e in examples], examples) == {"f1": 100.0, "em": 100.0}
    scores = task.score(["the Broncos\nQuestion: next", "Panthers of Carolina"], examples)
    # "broncos" vs "denver broncos": P 1, R 1/2 -> 2/3; {panthers, of, carolina} vs {carolina, panthers}: 4/5
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 4 / 5) / 2) and scores["em"] == 0.0


def test_a_lone_file_holds_out_whole_articles(tmp_path):
    path = squad_file(tmp_path / "train.json", articles=60)
    task = Squad(SquadOptions(path=path, n_train=1000, n_eval=1000))
    train, held_out = task.load("train", 0), task.load("eval", 0)
    title = lambda e: e.prompt.split("\n", 1)[0]  # noqa: E731
    assert len(train) + len(held_out) == 61 and not {title(e) for e in train} & {title(e) for e in held_out}
    assert {title(e) for e in held_out} == {f"Title: {t}" for t in ["Super_Bowl_50"] + [f"Article_{i}" for i in
                                                                     range(1, 60)] if in_eval_part(t)}


def test_from_the_hub(monkeypatch):
    calls = []
    rows = [{"id": "1", "title": "T", "context": "C.", "question": "Q?", "answers": {"text": ["a", "a", "b"],
                                                                                       "answer_start": [0, 0, 1]}},
            {"id": "2", "title": "T", "context": "C.", "question": "Q2?", "answers": {"text": [], "answer_start": []}}]
    module = types.ModuleType("datasets")
    module.load_dataset = lambda name, config, split: calls.append((name, config, split)) or rows
    monkeypatch.setitem(sys.modules, "datasets", module)
    examples = Squad(SquadOptions()).load("eval", 0)
    assert calls == [("rajpurkar/squad", None, "validation")]
    assert [e.answers for e in examples] == [(" a\n", " b\n")]  # the row without an answer is dropped
