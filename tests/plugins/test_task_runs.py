"""Every task runs end to end on CPU: `zofw run` of a shrunk recipe (a tiny random-weight OPT or RoBERTa with
the real vocabulary, the shared data, 2 DPZero steps) reports the task's metrics; `zofw list` shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zofw.cli import app

RECIPE = """
seed = 13
[model]
name = "{model}"
path = "{model_path}"
tokenizer = "{tokenizer}"
device = "cpu"
dtype = "float32"
max_length = 192
trainable = "bias"  # few weights: the run's time goes to the task's path, not to directions over embeddings
{model_extra}
[task]
name = "{task}"
path = "{path}"
{eval_file}
n_eval = 6
{task_extra}
[estimator]
name = "dpzero"
smoothing = 1e-3
[clipper]
name = "scalar"
bound = 10.0
[privacy]
epsilon = 2.0
delta = 1e-5
accountant = "rdp"
report = ["rdp"]
[train]
steps = 2
expected_batch = 4
lr = 1e-6
eval_every = 0
eval_batch = 6
"""

# task, model family, (train file, eval file or None) under ../shared/data or made here, extra task options.
# With one file, the eval split is its held-out part (whole passages / premises / articles), declared public.
RUNS = [
    ("sst5", "masked", ("lmbff/sst-5/train.tsv", "lmbff/sst-5/test.tsv"), 'k_per_class = 4'),
    ("trec", "masked", ("lmbff/trec/train.csv", "lmbff/trec/test.csv"), 'k_per_class = 2'),
    ("snli", "masked", ("made:snli.tsv", None), 'n_train = 12'),
    ("mnli", "masked", ("made:mnli.jsonl", None), 'n_train = 12'),
    ("rte", "masked", ("superglue/RTE/val.jsonl", None), 'n_train = 32'),
    ("boolq", "causal", ("superglue/BoolQ/val.jsonl", None), 'n_train = 32'),
    ("cb", "causal", ("superglue/CB/val.jsonl", None), 'n_train = 32'),
    ("squad", "causal", ("made:squad.json", None), 'n_train = 4'),
    ("drop", "causal", ("drop/drop_train_sample.json", None), 'n_train = 32\nmax_passage_chars = 300'),
]
METRICS = {"squad": {"f1", "em"}, "drop": {"f1", "em", "drop_f1", "drop_em"}}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """SNLI, MNLI and SQuAD files in their official layouts (../shared/data has none)."""
    folder = tmp_path_factory.mktemp("made")
    subjects = ["A man", "Two kids", "A woman", "An old dog", "The band", "A chef", "Some tourists", "A pilot"]
    pairs = [(f"{subject} {verb} in scene {i}.", hypothesis, gold) for i, subject in enumerate(subjects * 3)
             for verb, hypothesis, gold in [("rests", "Someone rests.", "entailment"),
                                            ("runs", "Nobody moves.", "contradiction")]]
    header = "index\tcaptionID\tpairID\tsentence1\tsentence2\tlabel1\tgold_label\n"
    (folder / "snli.tsv").write_text(header + "".join(f"{i}\tc\tp\t{a}\t{b}\t{g}\t{g}\n" for i, (a, b, g) in enumerate(pairs)))
    (folder / "mnli.jsonl").write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "gold_label": g}) + "\n"
                                               for a, b, g in pairs))
    articles = [{"title": f"Article_{t}", "paragraphs": [{"context": f"The Broncos beat the Panthers in game {t}.", "qas": [
        {"id": f"{t}", "question": "Who won?", "answers": [{"text": "the Broncos", "answer_start": 0}]}]}]}
        for t in range(30)]
    (folder / "squad.json").write_text(json.dumps({"data": articles}))
    return folder


@pytest.mark.parametrize("task, family, files, task_extra", RUNS, ids=[run[0] for run in RUNS])
def test_a_shrunk_recipe_runs_and_reports_the_task_metrics(task, family, files, task_extra, shared_data, made,
                                                           tiny_opt, tiny_roberta, tmp_path):
    where = lambda name: made / name[5:] if name.startswith("made:") else shared_data / name  # noqa: E731
    masked = family == "masked"
    recipe = tmp_path / f"{task}.toml"
    recipe.write_text(RECIPE.format(
        model="masked_lm" if masked else "causal_lm", model_path=tiny_roberta if masked else tiny_opt,
        tokenizer=shared_data / "tokenizers" / ("roberta" if masked else "opt"),
        model_extra="" if masked else "max_new_tokens = 6", task=task, path=where(files[0]),
        eval_file=f'eval_path = "{where(files[1])}"' if files[1] else "held_out_public = true", task_extra=task_extra))
    result = CliRunner().invoke(app, ["run", str(recipe), "--json", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    expected = METRICS.get(task, {"accuracy"})
    assert record["steps"] == 2 and record["main_metric"] == ("accuracy" if "accuracy" in expected else "f1")
    assert expected <= set(record["metrics"]) and expected <= set(record["metrics_before"])
    assert all(0.0 <= record["metrics"][name] <= 100.0 for name in expected)
    assert record["privacy"]["epsilon"]["rdp"] <= 2.0 + 1e-6


def test_a_malformed_data_file_is_one_line_at_the_command_line(shared_data, tiny_roberta, tmp_path):
    bad = tmp_path / "train.tsv"
    bad.write_text("4\tfine\n" + "x" * (129 * 1024) + "\n")
    recipe = tmp_path / "bad.toml"
    recipe.write_text(RECIPE.format(model="masked_lm", model_path=tiny_roberta, model_extra="",
                                    tokenizer=shared_data / "tokenizers" / "roberta", task="sst5", path=bad,
                                    eval_file=f'eval_path = "{bad}"', task_extra=""))
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: task.path: {bad}: line 2: longer than 128 KiB (132096 bytes); " \
                                    "not a data line of this format"


def test_zofw_list_shows_every_task():
    result = CliRunner().invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    tasks = {entry["name"]: entry for entry in json.loads(result.stdout)["tasks"]}
    assert {"sst2", "sst5", "snli", "mnli", "rte", "trec", "boolq", "cb", "squad", "drop"} <= set(tasks)
    assert all(tasks[name]["plugin"] == "tasks" and tasks[name]["summary"] for name in tasks if name != "toy")
