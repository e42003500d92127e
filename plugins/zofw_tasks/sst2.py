"""SST-2 sentiment (GLUE) with the MeZO (causal) and LM-BFF (masked) prompts; label words terrible/great."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional, Sequence

from pydantic import Field

from zofw.errors import BadInput
from zofw.slots.task import Example, Prediction, Task
from zofw_tasks.data import (DataOptions, FileSource, Split, check_files, hub_name, load_hub, read_text,
                             require_columns, source_for, unprotected_held_out)
from zofw_tasks.metrics import accuracy
from zofw_tasks.sampling import subsample, take_part

CHOICES = (" terrible", " great")  # label 0 (negative), 1 (positive); one token each with a leading space
# What follows the answer slot. MeZO's causal template ends at the label word. LM-BFF's masked template
# `*cls**sent_0*_It_was*mask*.*sep+*` puts "." right after the mask, with no space: the label word token
# (" great") carries the space, so the text reads "… It was great." exactly as LM-BFF tokenises it.
SUFFIX = {"causal": "", "masked": "."}


class SST2Options(DataOptions):
    dataset: str = "glue"  # hub name, used for a split that no local file gives
    config: Optional[str] = "sst2"  # hub configuration of `dataset`
    n_eval: int = Field(872, gt=0)  # the whole GLUE dev set
    template: Literal["causal", "masked"] = "causal"  # causal: MeZO on OPT; masked: LM-BFF on RoBERTa


@dataclass(frozen=True)
class Sentence:
    text: str
    label: int


def read_sst2_tsv(source: FileSource) -> list[Sentence]:
    """A GLUE-style TSV with a header naming ``sentence`` and ``label`` (other columns are ignored)."""
    # QUOTE_NONE: GLUE sentences contain bare quotes ('' and ") that are text, not CSV quoting
    rows = csv.reader(io.StringIO(read_text(source), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(rows, [])
    if "sentence" not in header or "label" not in header:
        raise BadInput(f"{source.where()}: expected a header with columns 'sentence' and 'label', "
                       f"got {header[:4]!r}")
    text_at, label_at = header.index("sentence"), header.index("label")
    sentences = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) <= max(text_at, label_at):
            raise BadInput(f"{source.where()}: line {line}: expected {len(header)} tab-separated columns, "
                           f"got {len(row)}")
        label = parse_label(row[label_at], f"{source.where()}: line {line}")
        sentences.append(Sentence(row[text_at].strip(), label))
    return sentences


def parse_label(value: Any, where: str) -> int:
    if str(value).strip() not in ("0", "1"):
        raise BadInput(f"{where}: label must be 0 or 1, got {value!r}")
    return int(str(value).strip())


def from_hub_row(row: Mapping[str, Any], where: str) -> Sentence:
    return Sentence(str(row["sentence"]).strip(), parse_label(row["label"], where))


class SST2(Task):
    """SST-2 binary sentiment: "{sentence} It was" + terrible/great; accuracy."""

    name = "sst2"
    kind = "classification"
    main_metric = "accuracy"
    Options = SST2Options
    options: SST2Options

    def check(self) -> None:
        check_files(self.options)

    def evaluates_on_private_data(self) -> bool:
        return unprotected_held_out(self.options)

    def load(self, split: Split, seed: int) -> list[Example]:
        n = self.options.n_train if split == "train" else self.options.n_eval
        source = source_for(split, self.options)
        if isinstance(source, FileSource):
            # grouped by text: a sentence that occurs twice never lands on both sides
            pool = take_part(read_sst2_tsv(source), source, lambda sentence: sentence.text)
            sentences = subsample(pool, n, seed)
        else:
            rows = load_hub(self.options.dataset, self.options.config, source.split)
            where = f"dataset '{hub_name(self.options.dataset, self.options.config)}' split '{source.split}'"
            require_columns(rows, where, ("sentence", "label"))
            sentences = [from_hub_row(row, where) for row in subsample(rows, n, seed)]
        return [self.example(sentence) for sentence in sentences]

    def example(self, sentence: Sentence) -> Example:
        # MeZO and LM-BFF alike: "{sentence} It was" then the label word (the masked LM's mask)
        return Example(prompt=f"{sentence.text} It was", answers=(CHOICES[sentence.label],), choices=CHOICES,
                       label=sentence.label, suffix=SUFFIX[self.options.template])

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        return accuracy(predictions, examples)
