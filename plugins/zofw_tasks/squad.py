"""SQuAD v1.1 reading comprehension as MeZO and DPZero run it on OPT: generate the answer after
"Title: …\\nContext: …\\nQuestion: …\\nAnswer:", trained on the first gold answer, scored by SQuAD-normalised
token F1 and exact match, the best over the gold answers.

Local files: the official JSON (``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}``); SQuAD 2.0 files load too, less their unanswerable questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from zofw.errors import BadInput
from zofw.slots.task import Example, Prediction
from zofw_tasks.base import DatasetTask, LazyRows
from zofw_tasks.data import DataOptions, FileSource, first_problem, require_columns
from zofw_tasks.drop_format import unique
from zofw_tasks.formats import json_document
from zofw_tasks.metrics import generation_scores

PROMPT = "Title: {title}\nContext: {context}\nQuestion: {question}\nAnswer:"  # MeZO's SQuADv2Template
TARGET = " {answer}\n"  # as DROP: the continuation up to the newline that stops generation


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # the release carries more keys (answer_start, …)


class SquadAnswer(_Record):
    text: str


class SquadQA(_Record):
    question: str
    id: str = ""
    answers: list[SquadAnswer] = []  # empty for SQuAD 2.0's unanswerable questions


class SquadParagraph(_Record):
    context: str
    qas: list[SquadQA]


class SquadArticle(_Record):
    title: str = ""
    paragraphs: list[SquadParagraph]


class SquadFile(_Record):
    data: list[SquadArticle]


@dataclass(frozen=True)
class SquadQuestion:
    title: str  # the article: the group that a held-out split keeps on one side
    context: str
    question: str
    golds: tuple[str, ...]  # distinct gold answers, in file order; golds[0] is the training target


def read_squad_file(source: FileSource) -> list[SquadQuestion]:
    try:
        squad = SquadFile.model_validate(json_document(source))
    except ValidationError as error:
        raise BadInput(f"{source.where()}: not in the SQuAD format: {first_problem(error)}") from None
    questions = []
    for article in squad.data:
        for paragraph in article.paragraphs:
            for qa in paragraph.qas:
                golds = unique(answer.text.strip() for answer in qa.answers)
                if golds:
                    questions.append(SquadQuestion(article.title, paragraph.context, qa.question, golds))
    return questions


def from_hub_row(row: Any) -> Optional[SquadQuestion]:
    golds = unique(str(answer).strip() for answer in row["answers"]["text"])
    return SquadQuestion(row["title"], row["context"], row["question"], golds) if golds else None


class SquadOptions(DataOptions):
    dataset: str = "rajpurkar/squad"  # hub name, used for a split that no local file gives


class Squad(DatasetTask[SquadQuestion]):
    """SQuAD reading comprehension: generate the answer (MeZO's prompt); token F1 and EM."""

    name = "squad"
    kind = "generation"
    main_metric = "f1"
    Options = SquadOptions
    options: SquadOptions

    def read_file(self, source: FileSource) -> list[SquadQuestion]:
        return read_squad_file(source)

    def hub_pool(self, rows: Any, where: str) -> LazyRows:
        require_columns(rows, where, ("title", "context", "question", "answers"))
        return LazyRows(rows, lambda row, _: from_hub_row(row))

    def group(self, record: SquadQuestion) -> str:
        return record.title  # every question about one article on the same side of a held-out split

    def example(self, record: SquadQuestion) -> Example:
        prompt = PROMPT.format(title=record.title, context=record.context, question=record.question.strip())
        return Example(prompt=prompt, answers=tuple(TARGET.format(answer=gold) for gold in record.golds))

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        return generation_scores(predictions, examples)
