"""DROP data: the official JSON release and the hub's flattened rows, both read into :class:`DropQuestion`.

Official format: ``{passage_id: {passage, qa_pairs: [{question, answer: {number, date: {day, month, year},
spans}, query_id, validated_answers?}]}}``. Hub (``ucinlp/drop``): rows with ``section_id``, ``passage``,
``question`` and ``answers_spans: {spans, types}``, where the hub has already flattened each answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from zofw.errors import BadInput
from zofw_tasks.data import FileSource, first_problem
from zofw_tasks.formats import json_document


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # the release carries more keys (wiki_url, …)


class DropDate(_Record):
    day: str = ""
    month: str = ""
    year: str = ""


class DropAnswer(_Record):
    number: Union[str, int, float] = ""  # a string in the release; a JSON number is accepted too
    date: DropDate = DropDate()
    spans: list[str] = []


class DropQA(_Record):
    question: str
    answer: DropAnswer
    query_id: str = ""
    validated_answers: list[DropAnswer] = []  # extra annotators' answers (dev set, some train questions)


class DropPassage(_Record):
    passage: str
    qa_pairs: list[DropQA]


DROP_FILE = TypeAdapter(dict[str, DropPassage])


@dataclass(frozen=True)
class DropQuestion:
    passage_id: str  # the group that the held-out split keeps on one side
    query_id: str
    passage: str
    question: str
    golds: tuple[str, ...]  # every accepted answer string; golds[0] is the training target
    # each annotator's answer as the official evaluator reads it: a tuple of spans (one for a number or a
    # date), for the official metric, which scores a multi-span answer as one bag of spans
    answer_sets: tuple[tuple[str, ...], ...] = ()


def answer_strings(answer: DropAnswer) -> tuple[str, ...]:
    """An answer's strings, as the official reader ``answer_json_to_strings``: the number if set, else the
    spans, else the date as "day month year". Unlike the reader, empty date parts are left out ("June
    1344", not " June 1344"), which only changes whitespace and so no normalised score, but makes a clean
    training target. Each span of a multi-span answer is a gold answer on its own (MeZO's F1 over spans).
    """
    number = str(answer.number).strip()
    if number:
        return (number,)
    spans = tuple(span.strip() for span in answer.spans if span.strip())
    if spans:
        return spans
    parts = [part.strip() for part in (answer.date.day, answer.date.month, answer.date.year) if part.strip()]
    return (" ".join(parts),) if parts else ()


def unique(strings: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(string for string in strings if string))


def read_drop_file(source: FileSource) -> list[DropQuestion]:
    """The answerable questions of an official-format file, in file order; BadInput names any problem."""
    data = json_document(source)
    try:
        passages = DROP_FILE.validate_python(data)
    except ValidationError as error:
        raise BadInput(f"{source.where()}: not in the DROP format: {first_problem(error)}") from None
    questions = []
    for passage_id, entry in passages.items():
        for qa in entry.qa_pairs:
            sets = tuple(dict.fromkeys(filter(None, map(answer_strings, (qa.answer, *qa.validated_answers)))))
            golds = unique(span for spans in sets for span in spans)
            if golds:  # the release has a few questions with an empty answer: nothing to train or score on
                questions.append(DropQuestion(passage_id, qa.query_id, entry.passage, qa.question, golds, sets))
    return questions


def from_hub_row(row: Mapping[str, Any]) -> DropQuestion:
    """A hub row; its ``answers_spans.spans`` are already the flattened gold strings of the question's one
    answer (the hub keeps no validated answers), so together they are its one bag for the official metric."""
    golds = unique(str(span).strip() for span in row["answers_spans"]["spans"])
    return DropQuestion(str(row.get("section_id", "")), str(row.get("query_id", "")), row["passage"],
                        row["question"], golds, (golds,) if golds else ())
