"""DROP (Dua et al., 2019) as MeZO and DPZero run it: generation, trained on the first gold answer,
scored by SQuAD-normalised token F1 against every gold answer."""

from __future__ import annotations

from typing import Optional, Sequence

from pydantic import Field

from zofw.slots.task import Example, Prediction, Task
from zofw_tasks.data import (DataOptions, FileSource, Split, check_files, load_hub, require_columns, source_for,
                             unprotected_held_out)
from zofw_tasks.drop_format import DropQuestion, from_hub_row, read_drop_file
from zofw_tasks.metrics import generation_scores
from zofw_tasks.sampling import subsample, take_part

PROMPT = "Passage: {passage}\nQuestion: {question}\nAnswer:"  # MeZO's DROPTemplate
# MeZO's target: the continuation of "Answer:" up to and including the newline. The causal adapter trains
# on answers[0] as given and stops generating at a newline, so the newline is what teaches it to stop.
TARGET = " {answer}\n"


class DropOptions(DataOptions):
    dataset: str = "ucinlp/drop"  # hub name, used for a split that no local file gives
    max_passage_chars: Optional[int] = Field(None, gt=0)  # cut passages to this many characters; None: whole


class Drop(Task):
    """DROP reading comprehension: generate the answer; F1 and EM against every gold answer."""

    name = "drop"
    kind = "generation"
    main_metric = "f1"
    Options = DropOptions
    options: DropOptions

    def check(self) -> None:
        check_files(self.options)

    def evaluates_on_private_data(self) -> bool:
        return unprotected_held_out(self.options)

    def load(self, split: Split, seed: int) -> list[Example]:
        n = self.options.n_train if split == "train" else self.options.n_eval
        source = source_for(split, self.options)
        if isinstance(source, FileSource):
            pool = take_part(read_drop_file(source), source, lambda question: question.passage_id)
            questions = subsample(pool, n, seed)
        else:
            rows = load_hub(self.options.dataset, None, source.split)
            where = f"dataset '{self.options.dataset}' split '{source.split}'"
            require_columns(rows, where, ("passage", "question", "answers_spans"))
            questions = [q for q in map(from_hub_row, subsample(rows, n, seed)) if q.golds]
        return [self.example(question) for question in questions]

    def example(self, question: DropQuestion) -> Example:
        passage = question.passage.strip()
        if self.options.max_passage_chars is not None:
            passage = passage[: self.options.max_passage_chars]
        prompt = PROMPT.format(passage=passage, question=question.question.strip())
        # Every gold is written as a continuation, so answers[0] is the training target " {first gold}\n";
        # the space and newline change no normalised score.
        return Example(prompt=prompt, answers=tuple(TARGET.format(answer=gold) for gold in question.golds))

    def score(self, predictions: Sequence[Prediction], examples: Sequence[Example]) -> dict[str, float]:
        return generation_scores(predictions, examples)
