from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from zofw.errors import BadInput
from zofw.plugins import registries
from zofw_tasks.sst2 import SST2, SST2Options


@pytest.fixture(scope="module")
def sst2(shared_data) -> Path:
    return shared_data / "sst2"


def test_registered_by_the_tasks_plugin():
    entry = registries()["tasks"].get("sst2")
    assert entry.plugin == "tasks" and entry.component is SST2
    assert SST2.kind == "classification" and SST2.main_metric == "accuracy"


@pytest.mark.parametrize("template, suffix", [("causal", ""), ("masked", ".")])
def test_prompts_are_exact(sst2, template, suffix):
    task = SST2(SST2Options(path=str(sst2 / "train.tsv"), eval_path=str(sst2 / "dev.tsv"), template=template))
    first = task.load("eval", 0)[0]  # dev.tsv line 2: "it 's a charming and often affecting journey . \t1"
    assert first.prompt == "it 's a charming and often affecting journey . It was"
    assert first.choices == (" terrible", " great") and first.label == 1 and first.answers == (" great",)
    assert first.suffix == suffix  # masked: "<sentence> It was<mask>." as LM-BFF's *mask*.*sep+*


def test_eval_path_gives_the_whole_dev_set_in_file_order(sst2):
    task = SST2(SST2Options(path=str(sst2 / "train.tsv"), eval_path=str(sst2 / "dev.tsv")))
    dev = task.load("eval", 5)
    assert len(dev) == 872 and dev == task.load("eval", 6)  # n_eval defaults to the whole dev set
    assert sum(e.label for e in dev) == 444  # GLUE SST-2 dev: 444 positive, 428 negative


def test_a_lone_file_holds_out_disjoint_sentences(sst2):
    task = SST2(SST2Options(path=str(sst2 / "train.tsv"), n_train=2000, n_eval=2000))
    train, held_out = task.load("train", 0), task.load("eval", 0)
    assert len(train) == len(held_out) == 2000
    assert not {e.prompt for e in train} & {e.prompt for e in held_out}


def test_subsample_is_deterministic_for_a_seed_and_differs_across_seeds(sst2):
    options = SST2Options(path=str(sst2 / "train.tsv"), n_train=64)
    first = SST2(options).load("train", 13)
    assert first == SST2(options).load("train", 13)
    assert first != SST2(options).load("train", 21)


def test_score_is_accuracy_in_percent(sst2):
    task = SST2(SST2Options(path=str(sst2 / "train.tsv"), eval_path=str(sst2 / "dev.tsv")))
    dev = task.load("eval", 0)
    assert task.score([e.label for e in dev], dev) == {"accuracy": 100.0}
    assert task.score([1] * len(dev), dev)["accuracy"] == pytest.approx(100 * 444 / 872)


def test_missing_file_is_bad_input():
    with pytest.raises(BadInput, match=r"^task\.path: no such file: /nonexistent/train\.tsv$"):
        SST2(SST2Options(path="/nonexistent/train.tsv")).check()


@pytest.mark.parametrize("content, problem", [
    ("hide new secretions\t0\n", "expected a header with columns 'sentence' and 'label', got ['hide new"),
    ("sentence\tlabel\ngood\t1\nbad\tnegative\n", "line 3: label must be 0 or 1, got 'negative'"),
    ("sentence\tlabel\ngood\n", "line 2: expected 2 tab-separated columns, got 1"),
])
def test_malformed_tsv_is_one_line_bad_input(tmp_path, content, problem):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(BadInput) as caught:
        SST2(SST2Options(path=str(path), eval_path=str(path))).load("train", 0)
    assert str(caught.value).startswith(f"task.path: {path}: {problem}")
    assert "\n" not in str(caught.value)


def test_options_reject_unknown_keys_and_templates():
    with pytest.raises(ValidationError, match="extra"):
        SST2Options.model_validate({"templat": "masked"})
    with pytest.raises(ValidationError):
        SST2Options(template="seq2seq")
    defaults = SST2Options()
    assert (defaults.dataset, defaults.config, defaults.n_train, defaults.n_eval) == ("glue", "sst2", 1000, 872)
