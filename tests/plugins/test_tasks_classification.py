"""The classification tasks on their real local files (../shared/data) and on a stand-in hub: exact prompts,
label words, labels, LM-BFF's k-per-class draw, the hub's own columns, label orders and splits."""

from __future__ import annotations

import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from zofw.errors import BadInput
from zofw.plugins import registries
from zofw_tasks.boolq import BoolQ, BoolQOptions
from zofw_tasks.nli import CB, MNLI, RTE, SNLI, CBOptions, MNLIOptions, RTEOptions, SNLIOptions
from zofw_tasks.sst2 import SST2, SST2Options
from zofw_tasks.sst5 import SST5, SST5Options
from zofw_tasks.trec import TREC, TRECOptions

class FakeDatasets:
    """Stands in for the ``datasets`` package: serves the given rows by split and records the calls."""

    def __init__(self, rows: dict[str, list]) -> None:
        self.rows, self.calls = rows, []

    def module(self) -> types.ModuleType:
        module = types.ModuleType("datasets")
        module.load_dataset = lambda name, config, split: self.calls.append((name, config, split)) or self.rows[split]
        return module


NEW_TASKS = {"sst5": SST5, "snli": SNLI, "mnli": MNLI, "rte": RTE, "trec": TREC, "boolq": BoolQ, "cb": CB}


@pytest.fixture(scope="module")
def lmbff(shared_data) -> Path:
    return shared_data / "lmbff"


@pytest.fixture(scope="module")
def superglue(shared_data) -> Path:
    return shared_data / "superglue"


@pytest.mark.parametrize("name", NEW_TASKS)
def test_registered_by_the_tasks_plugin(name):
    entry = registries()["tasks"].get(name)
    assert entry.plugin == "tasks" and entry.component is NEW_TASKS[name]
    assert entry.component.kind == "classification" and entry.component.main_metric == "accuracy"


# --- SST-5, TREC and SST-2 in LM-BFF's layouts ------------------------------------------------------


def test_sst5_lmbff_files_and_prompt(lmbff):
    task = SST5(SST5Options(path=str(lmbff / "sst-5" / "train.tsv"), eval_path=str(lmbff / "sst-5" / "test.tsv"),
                            n_train=100_000, n_eval=100_000))
    train, test = task.load("train", 0), task.load("eval", 0)
    assert len(train) == 8544 and len(test) == 2210  # every row, in file order when all are drawn
    first = test[0]  # test.tsv line 1: "1\tno movement , no yuks , not much of anything ."
    assert first.prompt == "no movement , no yuks , not much of anything . It was" and first.suffix == "."
    assert first.choices == (" terrible", " bad", " okay", " good", " great") and first.label == 1
    assert first.answers == (" bad",)
    assert SST5(SST5Options(path=str(lmbff / "sst-5" / "train.tsv"), template="causal")).load("train", 0)[0].suffix == ""


def test_sst5_default_draws_1000_test_examples_with_the_seed(lmbff):
    options = SST5Options(path=str(lmbff / "sst-5" / "train.tsv"), eval_path=str(lmbff / "sst-5" / "test.tsv"))
    first = SST5(options).load("eval", 42)
    assert len(first) == 1000 and first == SST5(options).load("eval", 42) != SST5(options).load("eval", 13)


def test_trec_lmbff_csv_and_prompt(lmbff):
    task = TREC(TRECOptions(path=str(lmbff / "trec" / "train.csv"), eval_path=str(lmbff / "trec" / "test.csv"),
                            n_eval=1000))
    test = task.load("eval", 0)
    assert len(test) == 500
    quoted = test[1]  # line 2: 4,"What county is Modesto , California in ?" (a quoted field with a comma)
    assert quoted.prompt == "" and quoted.suffix == ": What county is Modesto , California in ?"
    assert quoted.label == 4 and quoted.answers == (" Location",)
    assert quoted.choices == (" Description", " Entity", " Expression", " Human", " Location", " Number")
    causal = TREC(TRECOptions(path=str(lmbff / "trec" / "test.csv"), template="causal", held_out_public=True))
    example = causal.load("eval", 0)[0]
    assert example.prompt.startswith("Question: ") and example.prompt.endswith("\nType:") and example.suffix == ""


def test_sst2_reads_lmbff_headerless_test_file(lmbff):
    task = SST2(SST2Options(path=str(lmbff / "SST-2" / "train.tsv"), eval_path=str(lmbff / "SST-2" / "test.tsv"),
                            template="masked", n_eval=5000))
    test = task.load("eval", 0)
    assert len(test) == 1821  # "label sentence" lines, no header
    assert test[0].prompt == "no movement , no yuks , not much of anything . It was" and test[0].label == 0
    assert len(task.load("train", 0)) == 1000  # the header file: n_train drawn from its 6,920 rows


def test_k_per_class_draws_k_of_each_class_or_all_of_a_smaller_one(lmbff):
    path = str(lmbff / "trec" / "train.csv")
    full = Counter(e.label for e in TREC(TRECOptions(path=path, eval_path=path, n_train=100_000)).load("train", 0))
    task = TREC(TRECOptions(path=path, eval_path=path, k_per_class=512))
    train = task.load("train", 13)
    assert Counter(e.label for e in train) == {label: min(512, count) for label, count in full.items()}
    assert full[2] < 512  # LM-BFF's "Expression" (abbreviations) has fewer: all of them are taken
    assert train == task.load("train", 13) and train != task.load("train", 42)
    assert len(task.load("eval", 13)) == 1000  # the eval split is still n_eval at random


def test_k_per_class_on_sst2(shared_data):
    options = SST2Options(path=str(shared_data / "sst2" / "train.tsv"), k_per_class=16, held_out_public=True)
    train = SST2(options).load("train", 21)
    assert Counter(e.label for e in train) == {0: 16, 1: 16}


# --- NLI, BoolQ, CB in SuperGLUE's JSON lines and GLUE's TSV ----------------------------------------


def test_rte_superglue_prompts(superglue):
    path = str(superglue / "RTE" / "val.jsonl")
    masked = RTE(RTEOptions(path=path, eval_path=path, n_eval=1000)).load("eval", 0)
    assert len(masked) == 277
    first = masked[0]  # "Dana Reeve, … Foundation." / "Christopher Reeve had an accident." / not_entailment
    assert first.prompt == ("Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, "
                            "according to the Christopher Reeve Foundation?")
    assert first.suffix == ", christopher Reeve had an accident."  # LM-BFF lower-cases the first letter
    assert first.choices == (" Yes", " No") and first.label == 1
    causal = RTE(RTEOptions(path=path, eval_path=path, template="causal", n_eval=1000)).load("eval", 0)[0]
    assert causal.prompt == ("Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, "
                             "according to the Christopher Reeve Foundation.\nDoes this mean that \"Christopher Reeve "
                             "had an accident.\" is true? Yes or No?\n")
    assert causal.choices == ("Yes", "No") and causal.answers == ("No",) and causal.suffix == ""


def test_cb_superglue_prompt_and_labels(superglue):
    path = str(superglue / "CB" / "val.jsonl")
    examples = CB(CBOptions(path=path, eval_path=path)).load("eval", 0)
    assert len(examples) == 56
    assert Counter(e.label for e in examples) == {0: 23, 1: 28, 2: 5}  # entailment, contradiction, neutral
    first = examples[0]  # "Valence the void-brain, …" / "Valence was helping" / contradiction
    assert first.prompt.startswith("Suppose Valence the void-brain, Valence the virtuous valet.")
    assert first.prompt.endswith('Can we infer that "Valence was helping"? Yes, No, or Maybe?\n')
    assert first.choices == ("Yes", "No", "Maybe") and first.answers == ("No",)


def test_boolq_superglue_prompt(superglue):
    path = str(superglue / "BoolQ" / "val.jsonl")
    examples = BoolQ(BoolQOptions(path=path, eval_path=path, n_eval=10_000)).load("eval", 0)
    assert len(examples) == 3270
    first = examples[0]  # "does ethanol take more energy make that produces" / false
    assert first.prompt.startswith("Ethanol fuel -- All biomass goes through")
    assert first.prompt.endswith(" Does ethanol take more energy make that produces?\n")  # capital, "?"
    assert first.choices == ("No", "Yes") and first.label == 0
    assert 0.55 < sum(e.label for e in examples) / len(examples) < 0.7  # BoolQ dev: about 62% true


def test_a_lone_superglue_file_holds_out_whole_passages(superglue):
    task = BoolQ(BoolQOptions(path=str(superglue / "BoolQ" / "val.jsonl"), n_train=100_000, n_eval=100_000))
    train, held_out = task.load("train", 0), task.load("eval", 0)
    passage = lambda e: e.prompt.rsplit(" ", 1)[0]  # noqa: E731 - a passage with its questions stays on one side
    assert len(train) + len(held_out) == 3270 and not {passage(e) for e in train} & {passage(e) for e in held_out}
    assert task.evaluates_on_private_data()
    assert not BoolQ(BoolQOptions(path="x.jsonl", held_out_public=True)).evaluates_on_private_data()


def test_snli_and_mnli_glue_tsv_and_release_jsonl(tmp_path):
    header = "index\tcaptionID\tpairID\tsentence1\tsentence2\tlabel1\tgold_label"
    (tmp_path / "snli.tsv").write_text(f"{header}\n0\tc\tp\tA man sleeps.\tA person rests.\tentailment\tentailment\n"
                                       f"1\tc\tp\tA man sleeps.\tA dog barks.\tneutral\t-\n"  # no majority: skipped
                                       "2\tc\tp\tKids play\tNobody plays.\tcontradiction\tcontradiction\n")
    snli = SNLI(SNLIOptions(path=str(tmp_path / "snli.tsv"), eval_path=str(tmp_path / "snli.tsv"))).load("eval", 0)
    assert [e.label for e in snli] == [0, 2] and snli[0].choices == (" Yes", " Maybe", " No")
    assert snli[0].prompt == "A man sleeps?" and snli[0].suffix == ", a person rests."
    assert snli[1].prompt == "Kids play?"  # no full stop to replace: LM-BFF's blind cut would eat the "y"
    (tmp_path / "mnli.jsonl").write_text('{"gold_label": "neutral", "sentence1": "Ann sings.", "sentence2": "Bo hums."}\n')
    mnli = MNLI(MNLIOptions(path=str(tmp_path / "mnli.jsonl"), eval_path=str(tmp_path / "mnli.jsonl"),
                            template="causal")).load("eval", 0)
    assert mnli[0].prompt == 'Suppose Ann sings. Can we infer that "Bo hums."? Yes, No, or Maybe?\n'
    assert mnli[0].choices == ("Yes", "Maybe", "No") and mnli[0].answers == ("Maybe",)


# --- the hub, stood in for (no network) ----------------------------------------------------------------


def test_snli_from_the_hub_skips_unlabelled_rows_and_tests_on_test(monkeypatch):
    rows = [{"premise": f"P{i}.", "hypothesis": f"H{i}.", "label": [0, 1, 2, -1][i % 4]} for i in range(40)]
    fake = FakeDatasets({"train": rows, "test": rows[:8]})
    monkeypatch.setitem(sys.modules, "datasets", fake.module())
    task = SNLI(SNLIOptions(k_per_class=3))
    train, test = task.load("train", 0), task.load("eval", 0)
    assert fake.calls == [("stanfordnlp/snli", None, "train"), ("stanfordnlp/snli", None, "test")]
    assert Counter(e.label for e in train) == {0: 3, 1: 3, 2: 3}
    assert [e.label for e in test] == [0, 1, 2, 0, 1, 2]


def test_mnli_tests_on_the_matched_dev_set_unless_told(monkeypatch):
    row = {"premise": "P.", "hypothesis": "H.", "label": 1, "idx": 0}
    fake = FakeDatasets({"validation_matched": [row], "validation_mismatched": [row, row]})
    monkeypatch.setitem(sys.modules, "datasets", fake.module())
    assert len(MNLI(MNLIOptions()).load("eval", 0)) == 1
    assert len(MNLI(MNLIOptions(eval_split="validation_mismatched")).load("eval", 0)) == 2
    assert fake.calls == [("glue", "mnli", "validation_matched"), ("glue", "mnli", "validation_mismatched")]


def test_trec_hub_labels_are_renumbered_to_lmbff_words(monkeypatch):
    rows = [{"text": f"Q{coarse} ?", "coarse_label": coarse, "fine_label": 0} for coarse in range(6)]
    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets({"test": rows}).module())
    words = [e.answers[0] for e in TREC(TRECOptions()).load("eval", 0)]
    # the hub's ABBR, ENTY, DESC, HUM, LOC, NUM
    assert words == [" Expression", " Entity", " Description", " Human", " Location", " Number"]


def test_boolq_cb_rte_sst5_from_the_hub(monkeypatch):
    fake = FakeDatasets({
        "validation": [{"question": "is it", "answer": True, "passage": "It is."}],
        "test": [{"text": "fine", "label": 3, "label_text": "positive"}],
    })
    monkeypatch.setitem(sys.modules, "datasets", fake.module())
    (boolq,) = BoolQ(BoolQOptions()).load("eval", 0)
    assert boolq.prompt == "It is. Is it?\n" and boolq.label == 1
    assert SST5(SST5Options()).load("eval", 0)[0].answers == (" good",)
    fake.rows["validation"] = [{"premise": "P.", "hypothesis": "H.", "label": 2, "idx": 0}]
    assert CB(CBOptions()).load("eval", 0)[0].answers == ("Maybe",)
    fake.rows["validation"] = [{"sentence1": "P.", "sentence2": "H.", "label": 1, "idx": 0}]
    assert RTE(RTEOptions()).load("eval", 0)[0].answers == (" No",)
    assert fake.calls == [("google/boolq", None, "validation"), ("SetFit/sst5", None, "test"),
                          ("aps/super_glue", "cb", "validation"), ("glue", "rte", "validation")]


def test_a_hub_label_out_of_range_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets({"validation": [
        {"premise": "P.", "hypothesis": "H.", "label": 7}]}).module())
    with pytest.raises(BadInput, match=r"^dataset 'aps/super_glue/cb' split 'validation' row 0: label must be "):
        CB(CBOptions()).load("eval", 0)


def test_a_per_class_draw_from_the_hub_converts_only_the_drawn_rows(monkeypatch):
    class CountingRows(list):
        reads = 0

        def __getitem__(self, i):
            CountingRows.reads += 1
            return super().__getitem__(i)

    rows = CountingRows({"sentence": f"s{i}", "label": i % 2} for i in range(10_000))
    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets({"train": rows}).module())
    train = SST2(SST2Options(k_per_class=5)).load("train", 0)
    assert len(train) == 10 and CountingRows.reads <= 11  # the draw read 10 rows (+1: the column names)
