from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from zofw.errors import BadInput
from zofw.plugins import registries
from zofw_tasks.data import FileSource
from zofw_tasks.drop import Drop, DropOptions
from zofw_tasks.drop_format import read_drop_file
from zofw_tasks.sampling import in_eval_part


@pytest.fixture(scope="module")
def sample(shared_data) -> Path:
    return shared_data / "drop" / "drop_train_sample.json"


@pytest.fixture(scope="module")
def questions(sample):
    """Every answerable question of the sample, by query id."""
    return {q.query_id: q for q in read_drop_file(FileSource(sample, "task.path", "all"))}


def passage_of(prompt: str) -> str:
    head, _, _ = prompt.partition("\nQuestion: ")
    assert head.startswith("Passage: ")
    return head[len("Passage: "):]


def write_json(path: Path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def qa(question: str, spans=(), number="", date=None, validated=None) -> dict:
    answer = {"number": number, "date": date or {"day": "", "month": "", "year": ""}, "spans": list(spans)}
    record = {"question": question, "answer": answer, "query_id": question}
    if validated is not None:
        record["validated_answers"] = validated
    return record


def test_registered_by_the_tasks_plugin():
    entry = registries()["tasks"].get("drop")
    assert entry.plugin == "tasks" and entry.component is Drop
    assert Drop.kind == "generation" and Drop.main_metric == "f1"


def test_prompt_and_target_are_exact(sample, questions):
    raw = json.loads(sample.read_text())["nfl_2201"]
    first = raw["qa_pairs"][0]  # "How many points did the buccaneers need to tie in the first?" -> 3
    example = Drop(DropOptions(path=str(sample))).example(questions[first["query_id"]])
    assert example.prompt == f"Passage: {raw['passage'].strip()}\nQuestion: {first['question']}\nAnswer:"
    assert example.answers == (" 3\n",)  # MeZO's target: the continuation after "Answer:" up to its newline
    assert example.choices == () and example.suffix == ""


@pytest.mark.parametrize("query_id, golds", [
    ("f16c0ee7-f131-4a8b-a6ac-4d275ea68066", ("3",)),  # number
    ("b04a6f58-2860-445b-8770-d309a467fe30", ("Matthew Stafford",)),  # one span
    ("f88ed123-ec60-47d6-822e-3b2e4967beb5", ("Marshawn Lynch", "Benjamin Watson")),  # two spans, each a gold
    ("5cace600-9cd1-4f4e-8619-05aadb3571c1", ("7 July 1345",)),  # date: "day month year"
    ("3637ce9d-203d-49e0-a454-b8a49e376148", ("June 1344",)),  # date without a day: empty parts left out
])
def test_gold_answers_of_real_questions(questions, query_id, golds):
    assert questions[query_id].golds == golds


def test_questions_with_no_answer_are_dropped(questions):
    assert "506cd005-075c-4b27-a281-58389adb0ac3" not in questions  # history_1038: empty answer in the release
    assert len(questions) == 3419  # 3,420 questions in the sample, less that one


def test_validated_answers_are_golds_too(tmp_path):
    path = write_json(tmp_path / "drop.json", {"p": {"passage": "P.", "qa_pairs": [
        qa("Which car?", spans=["the red car"], validated=[
            {"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["red car"]},
            {"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["the red car"]},  # duplicate
        ]),
    ]}})
    golds = read_drop_file(FileSource(Path(path), "task.path", "all"))[0].golds
    assert golds == ("the red car", "red car")


def test_a_lone_file_splits_by_passage_into_disjoint_pools(sample, questions):
    task = Drop(DropOptions(path=str(sample), n_train=100_000, n_eval=100_000))
    train, held_out = task.load("train", 0), task.load("eval", 0)
    train_passages = {passage_of(e.prompt) for e in train}
    eval_passages = {passage_of(e.prompt) for e in held_out}
    assert train_passages and eval_passages and not train_passages & eval_passages
    assert len(train) + len(held_out) == len(questions)  # every answerable question on exactly one side
    passage_ids = {q.passage_id for q in questions.values()}
    share = sum(in_eval_part(p) for p in passage_ids) / len(passage_ids)
    assert 0.2 < share < 0.4  # about 30% of the passages held out
    # the split does not depend on the seed: the whole eval pool is the same for another seed
    assert {e.prompt for e in task.load("eval", 7)} == {e.prompt for e in held_out}


def test_subsample_is_deterministic_for_a_seed_and_differs_across_seeds(sample):
    task = Drop(DropOptions(path=str(sample), n_train=50, n_eval=20))
    first = task.load("train", 1)
    assert len(first) == 50 and len(task.load("eval", 1)) == 20
    assert first == Drop(DropOptions(path=str(sample), n_train=50, n_eval=20)).load("train", 1)
    assert [e.prompt for e in first] != [e.prompt for e in task.load("train", 2)]


def test_eval_path_gives_the_whole_eval_split_and_path_the_whole_train_split(sample, questions, tmp_path):
    eval_file = write_json(tmp_path / "dev.json", {"d1": {"passage": "Ann had 3 cats.", "qa_pairs": [
        qa("How many cats?", number="3"), qa("Who had cats?", spans=["Ann"])]}})
    task = Drop(DropOptions(path=str(sample), eval_path=eval_file, n_train=100_000))
    assert len(task.load("train", 0)) == len(questions)
    assert [e.answers for e in task.load("eval", 0)] == [(" 3\n",), (" Ann\n",)]


def test_max_passage_chars_cuts_the_passage(sample):
    example = Drop(DropOptions(path=str(sample), n_train=1, max_passage_chars=10)).load("train", 0)[0]
    assert len(passage_of(example.prompt)) == 10


def test_score_of_the_training_target_is_perfect_for_mezo_and_official_only_for_single_span_answers(sample):
    task = Drop(DropOptions(path=str(sample), n_eval=200))
    examples = task.load("eval", 0)
    scores = task.score([e.answers[0] for e in examples], examples)
    assert scores["f1"] == scores["em"] == 100.0  # MeZO: every span of a multi-span answer is a gold of its own
    # the official metric scores a multi-span answer as one bag: its first span alone is not exact
    single = [any(len(spans) == 1 for spans in e.answer_sets) for e in examples]
    assert 0 < sum(single) < len(examples)
    assert scores["drop_em"] == pytest.approx(100 * sum(single) / len(examples))
    assert scores["drop_em"] < scores["drop_f1"] < 100.0


def test_missing_file_is_bad_input():
    with pytest.raises(BadInput, match=r"^task\.path: no such file: /nonexistent/drop\.json$"):
        Drop(DropOptions(path="/nonexistent/drop.json")).check()
    with pytest.raises(BadInput, match=r"^task\.eval_path: no such file"):
        Drop(DropOptions(eval_path="/nonexistent/dev.json")).check()
    with pytest.raises(BadInput, match="no such file"):  # load checks again
        Drop(DropOptions(path="/nonexistent/drop.json")).load("train", 0)


@pytest.mark.parametrize("content, problem", [
    ('{"p": {"passage": "x", "qa_pairs": [}', "invalid JSON: "),
    ('[1, 2]', "not in the DROP format: top level: Input should be a valid dictionary"),
    ('{"p1": {"passage": "x"}}', "not in the DROP format: p1.qa_pairs: Field required"),
    ('{"p1": {"passage": "x", "qa_pairs": [{"question": "q", "answer": {"spans": "Ann"}}]}}',
     "not in the DROP format: p1.qa_pairs.0.answer.spans: Input should be a valid list"),
])
def test_malformed_files_are_one_line_bad_input(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BadInput) as caught:
        Drop(DropOptions(path=str(path))).load("train", 0)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"task.path: {path}: {problem}")


def test_an_empty_held_out_part_says_what_to_do(tmp_path):
    passage_id = next(f"p{i}" for i in range(100) if not in_eval_part(f"p{i}"))  # lands in the train part
    path = write_json(tmp_path / "one.json", {passage_id: {"passage": "x", "qa_pairs": [qa("q", number="1")]}})
    with pytest.raises(BadInput, match="no usable examples in its eval part .*give task.eval_path"):
        Drop(DropOptions(path=path)).load("eval", 0)


def test_options_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError, match="extra"):
        DropOptions.model_validate({"pth": "x.json"})
    with pytest.raises(ValidationError):
        DropOptions(n_train=0)
    assert DropOptions().dataset == "ucinlp/drop" and DropOptions().n_train == DropOptions().n_eval == 1000
