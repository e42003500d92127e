"""DROP (Dua et al., 2019) as MeZO and DPZero run it: generation, trained on the first gold answer, scored
both by MeZO's SQuAD-normalised token F1 against every gold span ("f1", "em") and by the official DROP
metric ("drop_f1", "drop_em"; :mod:`zofw_tasks.drop_metric`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from pydantic import Field

from zofw.slots.task import Example, Prediction
from zofw_tasks.base import DatasetTask, LazyRows
from zofw_tasks.data import DataOptions, FileSource, require_columns
from zofw_tasks.drop_format import DropQuestion, from_hub_row, read_drop_file
from zofw_tasks.drop_metric import best_drop_em_f1
from zofw_tasks.metrics import answer_line, generation_scores, mean_percent, require_aligned

PROMPT = "Passage: {passage}\nQuestion: {question}\nAnswer:"  # MeZO's DROPTemplate
# MeZO's target: the continuation of "Answer:" up to and including the newline. The causal adapter trains
# on answers[0] as given and stops generating at a newline, so the newline is what teaches it to stop.
TARGET = " {answer}\n"


class DropOptions(DataOptions):
    dataset: str = "ucinlp/drop"  # hub name, used for a split that no local file gives
    max_passage_chars: Optional[int] = Field(None, gt=0)  # cut passages to this many characters; None: whole


@dataclass(frozen=True)
class DropExample(Example):
    """An Example that also keeps each annotator's answer as a bag of spans, for the official metric
    (``answers`` flattens them: MeZO scores each span as a gold answer of its own)."""

    answer_sets: tuple[tuple[str, ...], ...] = ()


class Drop(DatasetTask[DropQuestion]):
    """DROP reading comprehension: generate the answer; MeZO's F1/EM and the official DROP F1/EM."""

    name = "drop"
    kind = "generation"
    main_metric = "f1"  # MeZO's, as the papers report it; the official metric is the stricter "drop_f1"
    Options = DropOptions
    options: DropOptions

    def read_file(self, source: FileSource) -> list[DropQuestion]:
        return read_drop_file(source)

    def hub_pool(self, rows: Any, where: str) -> LazyRows:
        require_columns(rows, where, ("passage", "question", "answers_spans"))
        # a row without any gold span is unusable: dropped after the draw, as the release's empty answers
        return LazyRows(rows, lambda row, _: (lambda q: q if q.golds else None)(from_hub_row(row)))

    def group(self, record: DropQuestion) -> str:
        return record.passage_id  # every question about one passage on the same side of a held-out split

    def example(self, question: DropQuestion) -> DropExample:
        passage = question.passage.strip()
        if self.options.max_passage_chars is not None:
            passage = passage[: self.options.max_passage_chars]
        prompt = PROMPT.format(passage=passage, question=question.question.strip())
        # Every gold is written as a continuation, so answers[0] is the training target " {first gold}\n";
        # the space and newline change no normalised score.
        return DropExample(prompt=prompt, answers=tuple(TARGET.format(answer=gold) for gold in question.golds),
                           answer_sets=question.answer_sets or tuple((gold,) for gold in question.golds))

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        scores = generation_scores(predictions, examples)
        require_aligned(predictions, examples)
        official = [best_drop_em_f1(answer_line(str(prediction)), answer_sets(example))
                    for prediction, example in zip(predictions, examples)]
        scores["drop_em"] = mean_percent([em for em, _ in official])
        scores["drop_f1"] = mean_percent([f1 for _, f1 in official])
        return scores


def answer_sets(example: Example) -> tuple[tuple[str, ...], ...]:
    """An example's bags of gold spans; a plain Example's answers count as one single-span bag each."""
    sets = getattr(example, "answer_sets", ())
    return sets or tuple((answer.strip(),) for answer in example.answers)
