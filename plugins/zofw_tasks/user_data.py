"""``text_classification``: your own labelled texts from a CSV, TSV or JSON-lines file, without a plugin.

A recipe names the file, the column holding the text and the one holding the label, the label values as the
file spells them (in class order), and optionally what the model scores for each class (label words such as
" great", or phrases such as "a question about billing") and a prompt template::

    [task]
    name = "text_classification"
    path = "tickets.csv"                 # training file: .csv, .tsv (or any other name: tab-separated), .jsonl
    eval_path = "tickets_test.csv"       # evaluation file (without it, a held-out part of path)
    text_column = "message"
    label_column = "team"
    labels = ["billing", "shipping"]     # as the file spells them; public: never read from the data
    choices = ["a question about billing", "a question about shipping"]
    template = "{text}"                  # {text}, any {column}, and optionally {answer} (where the choice goes)

Tables need a header line naming their columns; one line is one row. Every problem with a file (a missing
column, a label outside ``labels``, an empty text, a row with too few fields) is one line that names the
option, the file and the line, and exits 2.
"""

from __future__ import annotations

import string
from typing import Any, Iterator, Mapping, Optional

from pydantic import Field, field_validator, model_validator

from zofw.errors import BadInput
from zofw.slots.task import Example
from zofw_tasks.classification import ClassificationOptions, ClassificationTask, Labels, Pair, either, shown
from zofw_tasks.data import FileSource
from zofw_tasks.formats import data_lines, is_json_lines, json_lines, split_line

ANSWER = "answer"  # the template field that marks where the choice goes


def template_fields(template: str) -> list[str]:
    """The ``{names}`` of a template, in order; ValueError for a malformed one ("{text", "{0}", "{a.b}")."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or not name.replace("_", "a").replace("-", "a").replace(" ", "a").isalnum() or spec or conversion:
            raise ValueError(f"template field {{{name}}} must be a plain column name such as {{text}}")
        names.append(name)
    return names


class TextClassificationOptions(ClassificationOptions):
    path: str  # training file (.csv, .tsv, .jsonl); without eval_path also the source of a held-out eval part
    text_column: str = "text"  # the column holding the text ({text} in the template)
    label_column: str = "label"  # the column holding the label
    labels: list[str] = Field(min_length=2)  # label values as the file spells them, in class order (public)
    choices: Optional[list[str]] = None  # what the model scores per class: label words or phrases; default: labels
    template: str = "{text}"  # the prompt: {text}, any {column}, and optionally {answer} where the choice goes

    @field_validator("labels")
    @classmethod
    def _distinct(cls, labels: list[str]) -> list[str]:
        seen = [label.strip().lower() for label in labels]
        if any(not label for label in seen):
            raise ValueError("labels must not be empty strings")
        if len(set(seen)) != len(seen):
            raise ValueError("labels must be distinct (compared without case)")
        return labels

    @field_validator("template")
    @classmethod
    def _template(cls, template: str) -> str:
        names = template_fields(template)
        if names.count(ANSWER) > 1:
            raise ValueError("template may hold {answer} once")
        if not [name for name in names if name != ANSWER]:
            raise ValueError("template must use a column, e.g. \"{text}\"")
        return template

    @model_validator(mode="after")
    def _choices(self) -> "TextClassificationOptions":
        if self.choices is not None and len(self.choices) != len(self.labels):
            raise ValueError(f"choices must give one entry per label ({len(self.labels)}), got {len(self.choices)}")
        return self


class TextClassification(ClassificationTask):
    """Your own labelled texts (CSV/TSV/JSON lines): text and label columns, label words, a prompt template."""

    name = "text_classification"
    Options = TextClassificationOptions
    options: TextClassificationOptions

    def __init__(self, options: TextClassificationOptions) -> None:
        super().__init__(options)
        head, _, tail = options.template.partition("{" + ANSWER + "}")
        self._prompt, self._suffix = head, tail
        self._columns = [name if name != "text" else options.text_column
                         for name in dict.fromkeys(template_fields(options.template)) if name != ANSWER]
        self._labels = Labels({label.strip().lower(): i for i, label in enumerate(options.labels)},
                              either([repr(label) for label in options.labels]))
        if options.choices is not None:
            self._choices = tuple(options.choices)
        else:  # a label word follows the prompt after a space (" great"), unless the prompt ends in one
            spaced = bool(head) and not head[-1].isspace()
            self._choices = tuple((" " if spaced else "") + label for label in options.labels)

    @property
    def labels(self) -> Labels:  # type: ignore[override]  (per recipe, not per class)
        return self._labels

    def hub_dataset(self) -> tuple[str, Optional[str]]:
        raise BadInput("task.path: text_classification reads local files only")

    def example(self, record: Pair) -> Example:
        return Example(prompt=record.text_a, answers=(self._choices[record.label],), choices=self._choices,
                       label=record.label, suffix=record.text_b)

    def group(self, record: Pair) -> str:
        return record.text_a + record.text_b  # copies of one text stay on one side of a held-out split

    # --- reading ------------------------------------------------------------------------------------

    def read_file(self, source: FileSource) -> list[Pair]:
        records = []
        for where, fields in self.rows(source):
            label = self._labels.parse(fields[self.options.label_column], where)
            if label is not None:
                records.append(Pair(*self.render(fields, where), label))
        if not records:
            raise BadInput(f"{source.where()}: no labelled rows")
        return records

    def rows(self, source: FileSource) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """(where, fields by column name) of every data row; BadInput for a missing column or a short row."""
        needed = [self.options.label_column, *self._columns]
        if is_json_lines(source):
            for line, fields in json_lines(source):
                where = f"{source.where()}: line {line.number}"
                missing = [name for name in needed if name not in fields]
                if missing:
                    raise BadInput(f"{where}: no key {self.missing(missing, fields)}")
                yield where, fields
            return
        delimiter = "," if source.path.suffix.lower() == ".csv" else "\t"
        kind = "comma" if delimiter == "," else "tab"
        lines = data_lines(source)
        first = next(lines, None)
        if first is None:
            raise BadInput(f"{source.where()}: empty file")
        header = [name.strip() for name in split_line(first, delimiter, source)]
        missing = [name for name in needed if name not in header]
        if missing:
            raise BadInput(f"{source.where()}: line 1: the header has no column {self.missing(missing, header)} "
                           f"({kind}-separated; the first line must name the columns)")
        at = {name: header.index(name) for name in needed}
        for line in lines:
            values = split_line(line, delimiter, source)
            if len(values) <= max(at.values()):
                raise BadInput(f"{source.where()}: line {line.number}: expected {len(header)} {kind}-separated "
                               f"columns, got {len(values)}")
            yield f"{source.where()}: line {line.number}", {name: values[i] for name, i in at.items()}

    def missing(self, names: list[str], present: Any) -> str:
        """"'text' (task.text_column; has: a, b)" for a message."""
        options = {self.options.text_column: "task.text_column", self.options.label_column: "task.label_column"}
        named = ", ".join(f"'{name}'" + (f" ({options[name]})" if name in options else " (task.template)")
                          for name in names)
        has = ", ".join(shown(str(name))[1:-1] for name in list(present)[:8]) or "none"
        return f"{named}; it has: {has}"

    def render(self, fields: Mapping[str, Any], where: str) -> tuple[str, str]:
        """The prompt before and after the answer slot, with the row's columns filled in."""
        values = {}
        for name in self._columns:
            value = fields[name]
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise BadInput(f"{where}: '{name}' must be text, got {shown(value)}")
            value = str(value).strip()
            if not value:
                raise BadInput(f"{where}: '{name}' is empty")
            values["text" if name == self.options.text_column else name] = value
            values[name] = value
        return self._prompt.format_map(values), self._suffix.format_map(values)
