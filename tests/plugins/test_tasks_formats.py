"""Every data loader answers malformed input with one line of BadInput naming the file (and the line, for
line formats), never a traceback: bad rows, missing columns, a line over 128 KiB, deeply nested JSON, and
(property test) whatever else a file may hold."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from zofw.errors import BadInput
from zofw_tasks.boolq import BoolQ, BoolQOptions
from zofw_tasks.drop import Drop, DropOptions
from zofw_tasks.formats import MAX_LINE_BYTES
from zofw_tasks.nli import CB, MNLI, RTE, SNLI, CBOptions, MNLIOptions, RTEOptions, SNLIOptions
from zofw_tasks.squad import Squad, SquadOptions
from zofw_tasks.sst2 import SST2, SST2Options
from zofw_tasks.sst5 import SST5, SST5Options
from zofw_tasks.trec import TREC, TRECOptions

# every loader, by the file name its format is told by
LOADERS = {
    "sst2.tsv": (SST2, SST2Options), "sst5.tsv": (SST5, SST5Options), "trec.csv": (TREC, TRECOptions),
    "snli.tsv": (SNLI, SNLIOptions), "mnli.jsonl": (MNLI, MNLIOptions), "rte.tsv": (RTE, RTEOptions),
    "rte.jsonl": (RTE, RTEOptions), "boolq.jsonl": (BoolQ, BoolQOptions), "cb.jsonl": (CB, CBOptions),
    "squad.json": (Squad, SquadOptions), "drop.json": (Drop, DropOptions),
}
LINE_FORMATS = [name for name in LOADERS if not name.startswith(("squad", "drop"))]
JSON_LINES = [name for name in LOADERS if name.endswith(".jsonl")]
DOCUMENTS = ["squad.json", "drop.json"]

# one valid row or document per format, to break in one place at a time
VALID = {
    "sst2.tsv": "sentence\tlabel\ngreat fun\t1\n",
    "sst5.tsv": "4\tgreat fun\n",
    "trec.csv": '5,"How far is it, roughly ?"\n',
    "snli.tsv": "sentence1\tsentence2\tgold_label\nA man sleeps.\tA person rests.\tentailment\n",
    "mnli.jsonl": '{"sentence1": "A man sleeps.", "sentence2": "A person rests.", "gold_label": "neutral"}\n',
    "rte.tsv": "index\tsentence1\tsentence2\tlabel\n0\tA man sleeps.\tA person rests.\tentailment\n",
    "rte.jsonl": '{"premise": "A man sleeps.", "hypothesis": "A person rests.", "label": "entailment"}\n',
    "boolq.jsonl": '{"question": "is it", "passage": "It is.", "label": true}\n',
    "cb.jsonl": '{"premise": "A man sleeps.", "hypothesis": "A person rests.", "label": "neutral"}\n',
    "squad.json": json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "C.", "qas": [
        {"id": "1", "question": "Q?", "answers": [{"text": "C", "answer_start": 0}]}]}]}]}),
    "drop.json": json.dumps({"p1": {"passage": "P.", "qa_pairs": [
        {"question": "Q?", "answer": {"number": "2", "date": {"day": "", "month": "", "year": ""}, "spans": []}}]}}),
}


def load_all(name: str, path: Path) -> list:
    """Both splits of the whole file (eval_path too, so no held-out part can come out empty)."""
    task_class, options = LOADERS[name]
    task = task_class(options(path=str(path), eval_path=str(path)))
    return task.load("train", 0) + task.load("eval", 0)


def bad_input(name: str, tmp_path: Path, content: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BadInput) as caught:
        load_all(name, path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"task.path: {path}: "), message
    return message[len(f"task.path: {path}: "):]


@pytest.mark.parametrize("name", LOADERS)
def test_the_valid_rows_load(name, tmp_path):
    path = tmp_path / name
    path.write_text(VALID[name])
    assert len(load_all(name, path)) == 2


@pytest.mark.parametrize("name", LINE_FORMATS)
def test_a_line_over_128_kib_is_refused_by_its_number(name, tmp_path):
    long_line = "x" * (MAX_LINE_BYTES + 1)
    problem = bad_input(name, tmp_path, VALID[name] + long_line + "\n")
    assert problem.startswith(f"line {VALID[name].count(chr(10)) + 1}: longer than 128 KiB")


def test_a_long_line_of_multibyte_text_is_measured_in_bytes(tmp_path):
    text = "é" * (MAX_LINE_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    assert bad_input("sst5.tsv", tmp_path, f"4\t{text}\n").startswith("line 1: longer than 128 KiB")
    path = tmp_path / "ok.tsv"
    path.write_text(f"4\t{'é' * (MAX_LINE_BYTES // 2 - 8)}\n")  # just under: loads
    assert len(load_all("sst5.tsv", path)) == 2


@pytest.mark.parametrize("name", JSON_LINES)
def test_deeply_nested_json_lines(name, tmp_path):
    deep = "[" * 50_000 + "]" * 50_000  # under the line limit, far over the decoder's recursion limit
    assert bad_input(name, tmp_path, VALID[name] + deep + "\n") == "line 2: JSON nested too deeply"
    nested = "[" * 300 + "]" * 300  # parses, but is no text
    row = json.loads(VALID[name].splitlines()[0])
    text_key = next(k for k in row if k in ("premise", "sentence1", "passage"))
    problem = bad_input(name, tmp_path, VALID[name] + VALID[name].replace(f'"{text_key}": "', f'"{text_key}": {nested}, "x": "'))
    assert problem == f"line 2: '{text_key}' must be text, got a JSON array"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_deeply_nested_json_documents(name, tmp_path):
    assert bad_input(name, tmp_path, "[" * 50_000 + "]" * 50_000) == "JSON nested too deeply"
    deep = "[" * 200 + "]" * 200
    problem = bad_input(name, tmp_path, VALID[name].replace('"Q?"', deep))
    assert "question: Input should be a valid string" in problem


@pytest.mark.parametrize("name, content, problem", [
    ("sst2.tsv", "sentence\tlabel\ngood\t1\nbad\t\n", "line 3: label must be 0 or 1, got ''"),
    ("sst2.tsv", "0 fine\n1 good\n2 bad\n", "line 3: label must be 0 or 1, got '2'"),  # LM-BFF's test layout
    ("sst5.tsv", "4\tgreat\n5\tgreater\n", "line 2: label must be 0, 1, 2, 3 or 4, got '5'"),
    ("sst5.tsv", "4\tgreat\n3\tgood\textra\n", "line 2: expected label<TAB>text (2 columns, no header), got 3 columns"),
    ("sst5.tsv", "text\n", "expected a header with columns 'sentence' (or 'text') and 'label', got ['text']"),
    ("trec.csv", '5,"How far is it ?\n', "line 1: not valid CSV: unexpected end of data"),
    ("trec.csv", "5,How far,is it ?\n", "line 1: expected label,text (2 columns, no header), got 3 columns"),
    ("snli.tsv", "sentence1\tsentence2\tlabel1\na\tb\tneutral\n",
     "expected a header with columns 'premise' (or 'sentence1'), 'hypothesis' (or 'sentence2') and "
     "'gold_label' (or 'label'), got ['sentence1', 'sentence2', 'label1']"),  # GLUE's test file: no labels
    ("snli.tsv", "sentence1\tsentence2\tgold_label\na\tb\n", "line 2: expected 3 tab-separated columns, got 2"),
    ("snli.tsv", "sentence1\tsentence2\tgold_label\na\tb\tyes\n",
     "line 2: label must be entailment, neutral or contradiction (or 0, 1 or 2), got 'yes'"),
    ("rte.jsonl", '{"premise": "a", "label": "entailment"}\n', "line 1: missing key(s) hypothesis (or sentence2)"),
    ("rte.jsonl", '\n\n["premise"]\n', "line 3: expected a JSON object, got a JSON array"),
    ("rte.jsonl", '{"premise": "a",\n', "line 1: invalid JSON: Expecting property name enclosed in double quotes"),
    ("rte.jsonl", '{"premise": "a", "hypothesis": 3, "label": "entailment"}\n', "line 1: 'hypothesis' must be text, got 3"),
    ("cb.jsonl", '{"premise": "a", "hypothesis": "b", "label": {"x": 1}}\n',
     "line 1: label must be entailment, contradiction or neutral (or 0, 1 or 2), got a JSON object"),
    ("boolq.jsonl", '{"question": "q", "passage": "p", "label": "maybe"}\n',
     "line 1: label must be false or true (or 0 or 1), got 'maybe'"),
    ("squad.json", '{"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}',
     "not in the SQuAD format: data.0.paragraphs.0.context: Field required"),
    ("squad.json", '{"data": [', "invalid JSON: Expecting value: line 1 column 11 (char 10)"),
    ("drop.json", '{"p1": {"passage": "x"}}', "not in the DROP format: p1.qa_pairs: Field required"),
    ("cb.jsonl", "", "no usable examples"),
    ("sst2.tsv", "", "empty file"),
])
def test_malformed_rows_and_missing_columns(name, content, problem, tmp_path):
    assert bad_input(name, tmp_path, content).startswith(problem)


def test_a_file_that_is_not_utf8_is_bad_input(tmp_path):
    path = tmp_path / "rte.jsonl"
    path.write_bytes(b'{"premise": "\xff"}\n')
    with pytest.raises(BadInput, match=r"^task\.path: .*rte\.jsonl: cannot read: 'utf-8' codec can't decode"):
        load_all("rte.jsonl", path)


# --- property: whatever a file holds, a loader gives examples or one line of BadInput ----------------

PIECES = ["\t", ",", " ", "\n", '"', "'", "{", "}", "[", "]", ":", "-", "0", "1", "2", "5", "-1", "true", "null",
          "label", "sentence", "sentence1", "sentence2", "gold_label", "premise", "hypothesis", "passage",
          "question", "entailment", "neutral", "data", "paragraphs", "qas", "context", "passage", "qa_pairs",
          "answer", "spans", "é", "\r", "\x00", "\u2028"]
file_texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=60).map("".join)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(PIECES), inner, max_size=4),
                           max_leaves=12)
row_objects = st.dictionaries(st.sampled_from(["premise", "hypothesis", "label", "sentence1", "sentence2",
                                               "gold_label", "question", "passage", "answer"]),
                              json_values | st.sampled_from(["entailment", "neutral", "0", "1", True]), max_size=5)

anything = json_values | st.text(max_size=8)
drop_like = st.dictionaries(st.text(max_size=3), st.fixed_dictionaries({
    "passage": anything,
    "qa_pairs": st.lists(st.fixed_dictionaries({
        "question": anything,
        "answer": st.fixed_dictionaries({"number": anything, "date": anything, "spans": st.lists(anything, max_size=3)}),
    }, optional={"validated_answers": st.lists(anything, max_size=2), "query_id": anything}), max_size=3),
}), max_size=3)
squad_like = st.fixed_dictionaries({"data": st.lists(st.fixed_dictionaries({
    "title": anything,
    "paragraphs": st.lists(st.fixed_dictionaries({"context": anything, "qas": st.lists(st.fixed_dictionaries({
        "question": anything, "answers": st.lists(st.fixed_dictionaries({"text": anything}), max_size=2) | anything,
    }), max_size=3)}), max_size=2),
}), max_size=2)})


def assert_examples_or_one_line(name: str, content: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
        try:
            examples = load_all(name, path)
        except BadInput as error:
            message = str(error)
            assert "\n" not in message and message.startswith(f"task.path: {path}"), message
        else:
            assert all(example.prompt is not None for example in examples)


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(name=st.sampled_from(sorted(LOADERS)), content=file_texts)
def test_any_text_gives_examples_or_one_line(name, content):
    assert_examples_or_one_line(name, content)


@PROPERTY
@given(name=st.sampled_from(sorted(LOADERS)), rows=st.lists(row_objects | json_values, max_size=4))
@example(name="drop.json", rows=[{"p\n1": {"passage": "x"}}])  # a key with a newline, named in the message
def test_any_json_gives_examples_or_one_line(name, rows):
    text = "\n".join(json.dumps(row) for row in rows) if name.endswith(".jsonl") else json.dumps(rows[0] if rows else {})
    assert_examples_or_one_line(name, text)


@PROPERTY
@given(name=st.sampled_from(DOCUMENTS), document=drop_like | squad_like)
def test_any_document_of_nearly_the_right_shape_gives_examples_or_one_line(name, document):
    assert_examples_or_one_line(name, json.dumps(document))


@pytest.mark.parametrize("name", LINE_FORMATS)
def test_crlf_line_ends_and_blank_lines_read_as_plain_ones(name, tmp_path):
    plain, windows = tmp_path / "plain" / name, tmp_path / "windows" / name
    for path, text in ((plain, VALID[name]), (windows, VALID[name].replace("\n", "\r\n\r\n"))):
        path.parent.mkdir()
        path.write_bytes(text.encode())
    assert load_all(name, plain) == load_all(name, windows)
