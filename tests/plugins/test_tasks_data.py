"""Where splits come from, seeded subsets, and the hub path with a fake ``datasets`` module (no network)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from zofw.errors import BadInput
from zofw_tasks.data import DataOptions, FileSource, HubSource, source_for
from zofw_tasks.drop import Drop, DropOptions
from zofw_tasks.sampling import in_eval_part, per_class, subsample
from zofw_tasks.sst2 import SST2, SST2Options


@pytest.mark.parametrize("path, eval_path, split, expected", [
    ("t.json", None, "train", FileSource(Path("t.json"), "task.path", "train")),
    ("t.json", None, "eval", FileSource(Path("t.json"), "task.path", "eval")),
    ("t.json", "d.json", "train", FileSource(Path("t.json"), "task.path", "all")),
    ("t.json", "d.json", "eval", FileSource(Path("d.json"), "task.eval_path", "all")),
    (None, "d.json", "train", HubSource("train")),
    (None, None, "eval", HubSource("validation")),
])
def test_source_of_each_split(path, eval_path, split, expected):
    assert source_for(split, DataOptions(path=path, eval_path=eval_path)) == expected


def test_subsample_is_seeded_without_replacement_and_takes_all_when_short():
    pool = list(range(100))
    first = subsample(pool, 10, seed=3)
    assert first == subsample(pool, 10, seed=3) and first != subsample(pool, 10, seed=4)
    assert len(set(first)) == 10
    assert subsample(pool[:5], 10, seed=3) == pool[:5]
    assert subsample(range(100), 10, seed=3) == first  # a lazy pool is read by index, same draw


def test_per_class_draws_k_of_each_class_in_pool_order():
    pool = [f"item{i}" for i in range(100)]
    labels = [0] * 70 + [1] * 27 + [2] * 3
    drawn = per_class(pool, labels, 5, seed=1)
    assert [labels[pool.index(item)] for item in drawn] == [0] * 5 + [1] * 5 + [2] * 3  # all 3 of the small class
    assert drawn == per_class(pool, labels, 5, seed=1) != per_class(pool, labels, 5, seed=2)
    assert drawn == sorted(drawn, key=pool.index)


def test_held_out_part_is_a_stable_fraction():
    keys = [f"passage_{i}" for i in range(4000)]
    share = sum(map(in_eval_part, keys)) / len(keys)
    assert 0.28 < share < 0.32
    assert [in_eval_part(k) for k in keys[:50]] == [in_eval_part(k) for k in keys[:50]]


class FakeDatasets:
    """Stands in for the ``datasets`` package: records calls, serves rows or fails like an offline hub."""

    def __init__(self, rows: dict[str, list[dict]] | None) -> None:
        self.rows, self.calls = rows, []

    def module(self) -> types.ModuleType:
        module = types.ModuleType("datasets")
        module.load_dataset = self.load_dataset
        return module

    def load_dataset(self, name, config, split):
        self.calls.append((name, config, split))
        if self.rows is None:
            raise ConnectionError("Couldn't reach 'ucinlp/drop' on the Hub\n(LocalEntryNotFoundError)")
        return self.rows[split]


def drop_row(i: int) -> dict:
    return {"section_id": f"s{i}", "query_id": f"q{i}", "passage": f"Passage {i}.", "question": f"Q{i}?",
            "answers_spans": {"spans": [str(i), str(i)], "types": ["number", "number"]}}


def test_drop_from_the_hub_without_a_path(monkeypatch):
    fake = FakeDatasets({"train": [drop_row(i) for i in range(30)], "validation": [drop_row(i) for i in range(5)]})
    monkeypatch.setitem(sys.modules, "datasets", fake.module())
    task = Drop(DropOptions(n_train=10))
    train, held_out = task.load("train", 0), task.load("eval", 0)
    assert fake.calls == [("ucinlp/drop", None, "train"), ("ucinlp/drop", None, "validation")]
    assert len(train) == 10 and len(held_out) == 5
    assert held_out[2].prompt == "Passage: Passage 2.\nQuestion: Q2?\nAnswer:" and held_out[2].answers == (" 2\n",)


def test_sst2_from_the_hub_without_a_path(monkeypatch):
    fake = FakeDatasets({"validation": [{"sentence": "fine . ", "label": 1, "idx": 0}]})
    monkeypatch.setitem(sys.modules, "datasets", fake.module())
    (example,) = SST2(SST2Options()).load("eval", 0)
    assert fake.calls == [("glue", "sst2", "validation")]
    assert example.prompt == "fine . It was" and example.label == 1


def test_an_unreachable_hub_is_one_line_bad_input(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets(None).module())
    with pytest.raises(BadInput) as caught:
        Drop(DropOptions()).load("train", 0)
    message = str(caught.value)
    assert message.startswith("cannot load dataset 'ucinlp/drop' split 'train' from the hub (offline?): "
                              "ConnectionError: Couldn't reach")
    assert "\n" not in message


def test_a_hub_dataset_without_the_needed_columns_is_bad_input(monkeypatch):
    fake = FakeDatasets({"train": [{"text": "x", "label": 0}]})
    monkeypatch.setitem(sys.modules, "datasets", fake.module())
    with pytest.raises(BadInput, match=r"dataset 'glue/sst2' split 'train' lacks column\(s\) sentence"):
        SST2(SST2Options()).load("train", 0)
