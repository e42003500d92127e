"""What every classification task shares: labelled texts read from tables, JSON lines or the hub; LM-BFF's
k-per-class draw; accuracy.

A task declares its :class:`Columns` (which names hold its text(s) and label, with the aliases the official
releases use) and its :class:`Labels` (how the files spell each class), and writes only its prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping, Optional, Sequence

from pydantic import Field

from zofw.errors import BadInput
from zofw.slots.task import Example, Prediction
from zofw_tasks.base import DatasetTask, LazyRows
from zofw_tasks.data import DataOptions, FileSource, Split
from zofw_tasks.formats import Line, data_lines, is_json_lines, json_lines, shown, split_line
from zofw_tasks.metrics import accuracy
from zofw_tasks.sampling import per_class

Template = Literal["causal", "masked"]  # causal: MeZO's prompts for OPT; masked: LM-BFF's for RoBERTa


class ClassificationOptions(DataOptions):
    # k examples of each class for training, drawn with the seed, instead of n_train at random: LM-BFF's
    # few-shot sets, as DPZero trains RoBERTa (k = 512). None: n_train examples regardless of class (OPT).
    k_per_class: Optional[int] = Field(None, gt=0)


@dataclass(frozen=True)
class Labels:
    """How files and hub rows spell each class, mapped to the task's class index (its choice index)."""

    spellings: Mapping[str, int]  # lower-case spelling -> class index
    expected: str  # for messages: "0 or 1", "entailment or not_entailment (or 0 or 1)"
    unlabelled: frozenset = frozenset()  # spellings meaning "no gold label" (SNLI's "-", the hub's -1): skipped

    @staticmethod
    def numbered(count: int) -> "Labels":
        numbers = [str(i) for i in range(count)]
        return Labels({n: i for i, n in enumerate(numbers)}, either(numbers))

    @staticmethod
    def named(names: Sequence[str], unlabelled: Sequence[str] = ()) -> "Labels":
        """Names by class index; the index itself is accepted too (hub ClassLabel columns give numbers)."""
        spellings = {name.lower(): i for i, name in enumerate(names)} | {str(i): i for i in range(len(names))}
        numbers = [str(i) for i in range(len(names))]
        return Labels(spellings, f"{either(names)} (or {either(numbers)})", frozenset(unlabelled))

    @staticmethod
    def renumbered(mapping: Mapping[int, int], unlabelled: Sequence[str] = ()) -> "Labels":
        """Numbers of another label order mapped to the task's (TREC on the hub orders its classes otherwise)."""
        numbers = [str(n) for n in sorted(mapping)]
        return Labels({str(n): i for n, i in mapping.items()}, either(numbers), frozenset(unlabelled))

    def parse(self, value: Any, where: str) -> Optional[int]:
        """The class index of ``value``; None for an unlabelled row; BadInput for anything else."""
        if isinstance(value, bool):  # a JSON true/false (BoolQ); checked first: bool is an int
            key = str(value).lower()
        elif isinstance(value, (str, int)):
            key = str(value).strip().lower()
        else:
            raise BadInput(f"{where}: label must be {self.expected}, got {shown(value)}")
        if key in self.unlabelled:
            return None
        if key not in self.spellings:
            raise BadInput(f"{where}: label must be {self.expected}, got {shown(value)}")
        return self.spellings[key]


def either(names: Sequence[str], word: str = "or") -> str:
    """"a", "a or b", "a, b or c" (with ``word`` "and": a list of things all needed)."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {word} " + names[-1]


@dataclass(frozen=True)
class Columns:
    """The names that may hold each field, first the one shown in messages (GLUE says sentence1, SuperGLUE
    premise, the SNLI release gold_label, GLUE's RTE label …)."""

    text_a: tuple[str, ...]
    text_b: tuple[str, ...] = ()  # empty: a single-text task
    label: tuple[str, ...] = ("label",)

    def groups(self) -> list[tuple[str, ...]]:
        return [group for group in (self.text_a, self.text_b, self.label) if group]

    def missing(self, present: Any) -> list[str]:
        return [described(group) for group in self.groups() if not any(name in present for name in group)]

    def pick(self, present: Any) -> list[Optional[str]]:
        """The name used for text_a, text_b, label (None where a group is empty), given the names present."""
        return [next((name for name in group if name in present), None) for group in (self.text_a, self.text_b,
                                                                                      self.label)]


def described(group: tuple[str, ...]) -> str:
    return group[0] + "".join(f" (or {name})" for name in group[1:])


def quoted(group: tuple[str, ...]) -> str:
    return f"'{group[0]}'" + "".join(f" (or '{name}')" for name in group[1:])


@dataclass(frozen=True)
class Pair:
    """One labelled example: a text, or a pair of texts (premise and hypothesis, passage and question)."""

    text_a: str
    text_b: str
    label: int


class ClassificationTask(DatasetTask[Pair]):
    """Base of classification tasks: reading, the k-per-class draw and accuracy; subclasses write the prompt."""

    kind = "classification"
    main_metric = "accuracy"
    options: ClassificationOptions

    columns: ClassVar[Columns]
    labels: ClassVar[Labels]
    hub_columns: ClassVar[Optional[Columns]] = None  # where the hub names things otherwise (None: columns)
    hub_labels: ClassVar[Optional[Labels]] = None  # where the hub numbers classes otherwise (None: labels)
    # LM-BFF's single-text files have no header and put the label first ("2\tgreat fun", "5,How far …?", and
    # SST-2's test "0 no movement"). A file whose first field is a label is read that way.
    headerless: ClassVar[bool] = False

    def example(self, record: Pair) -> Example:
        raise NotImplementedError

    def group(self, record: Pair) -> str:
        return record.text_a  # a premise with its hypotheses, a passage with its questions, stay together

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        return accuracy(predictions, examples)

    def draw(self, pool: Sequence[Optional[Pair]], split: Split, seed: int) -> list[Optional[Pair]]:
        k = self.options.k_per_class
        if split != "train" or k is None:
            return super().draw(pool, split, seed)
        labels = pool.labels if isinstance(pool, LazyRows) and pool.labels is not None else [p.label for p in pool]
        return per_class(pool, labels, k, seed)

    # --- records from named fields (JSON lines, hub rows) -----------------------------------------

    def pair(self, fields: Mapping[str, Any], names: Sequence[Optional[str]], label: Optional[int],
             where: str) -> Optional[Pair]:
        text_a, text_b = (text(fields[name], name, where) if name else "" for name in names[:2])
        return None if label is None else Pair(text_a, text_b, label)

    def hub_pool(self, rows: Any, where: str) -> LazyRows:
        columns, labels = self.hub_columns or self.columns, self.hub_labels or self.labels
        present = set(getattr(rows, "column_names", None) or (rows[0].keys() if len(rows) else ()))
        missing = columns.missing(present)
        if missing:
            raise BadInput(f"{where} lacks column(s) {', '.join(missing)} (has {', '.join(sorted(present)) or 'none'})")
        names = columns.pick(present)
        # the label column as one list (fast on a datasets.Dataset), so unlabelled rows are skipped before
        # the draw and a per-class draw reads no text
        values = rows[names[2]] if hasattr(rows, "column_names") else [row[names[2]] for row in rows]
        parsed = [labels.parse(value, f"{where} row {i}") for i, value in enumerate(values)]
        keep = [i for i, label in enumerate(parsed) if label is not None]
        return LazyRows(rows, lambda row, i: self.pair(row, names, parsed[i], f"{where} row {i}"), keep,
                        [parsed[i] for i in keep])  # type: ignore[misc]

    # --- records from files -----------------------------------------------------------------------

    def read_file(self, source: FileSource) -> list[Pair]:
        if is_json_lines(source):
            return self.read_json_lines(source)
        return self.read_table(source, "," if source.path.suffix.lower() == ".csv" else "\t")

    def read_json_lines(self, source: FileSource) -> list[Pair]:
        records = []
        for line, fields in json_lines(source):
            where = f"{source.where()}: line {line.number}"
            missing = self.columns.missing(fields)
            if missing:
                raise BadInput(f"{where}: missing key(s) {', '.join(missing)}")
            names = self.columns.pick(fields)
            record = self.pair(fields, names, self.labels.parse(fields[names[2]], where), where)
            if record is not None:
                records.append(record)
        return records

    def read_table(self, source: FileSource, delimiter: str) -> list[Pair]:
        lines = iter(data_lines(source))
        first = next(lines, None)
        if first is None:
            raise BadInput(f"{source.where()}: empty file")
        if self.headerless and self.starts_with_label(first.text, delimiter):
            return [self.headerless_row(line, delimiter, source) for line in (first, *lines)]
        header = split_line(first, delimiter, source)
        if self.columns.missing(header):
            raise BadInput(f"{source.where()}: expected a header with columns "
                           f"{either([quoted(g) for g in self.columns.groups()], 'and')}, got {[h[:40] for h in header[:4]]!r}")
        at = [header.index(name) if name else None for name in self.columns.pick(header)]
        needed = max(i for i in at if i is not None) + 1
        kind = "tab" if delimiter == "\t" else "comma"
        records = []
        for line in lines:
            fields = split_line(line, delimiter, source)
            where = f"{source.where()}: line {line.number}"
            if len(fields) < needed:
                raise BadInput(f"{where}: expected {len(header)} {kind}-separated columns, got {len(fields)}")
            label = self.labels.parse(fields[at[2]], where)  # type: ignore[index]
            if label is not None:
                records.append(Pair(fields[at[0]].strip(), fields[at[1]].strip() if at[1] is not None else "", label))  # type: ignore[index]
        return records

    def starts_with_label(self, text: str, delimiter: str) -> bool:
        head = re.split(r"[\t ]" if delimiter == "\t" else re.escape(delimiter), text, maxsplit=1)[0]
        return head.strip().lower() in self.labels.spellings

    def headerless_row(self, line: Line, delimiter: str, source: FileSource) -> Pair:
        where = f"{source.where()}: line {line.number}"
        if delimiter == "\t" and "\t" not in line.text:  # LM-BFF's SST-2 test file: "label sentence"
            fields = line.text.split(" ", 1)
        else:
            fields = split_line(line, delimiter, source)
        if len(fields) != 2:
            shape = "label<TAB>text" if delimiter == "\t" else "label,text"
            raise BadInput(f"{where}: expected {shape} (2 columns, no header), got {len(fields)} columns")
        label = self.labels.parse(fields[0], where)
        if label is None:
            raise BadInput(f"{where}: unlabelled row in a file without header")
        return Pair(fields[1].strip(), "", label)


def text(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{where}: '{name}' must be text, got {shown(value)}")
    return value.strip()


def lower_first(text_: str) -> str:
    """LM-BFF's ``sentl_``: the text with its first character lower-cased (it now continues a sentence)."""
    return text_[:1].lower() + text_[1:]


def without_final_punctuation(text_: str) -> str:
    """LM-BFF's ``sent-_``: the text less its last character, the full stop that "?" replaces. LM-BFF cuts the
    last character blindly; here only a punctuation mark is cut, so a premise without one keeps its last
    letter (the same text wherever LM-BFF's cut was meant)."""
    return text_[:-1] if text_ and not text_[-1].isalnum() and not text_[-1].isspace() else text_
