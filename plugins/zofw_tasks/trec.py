"""TREC question classification (six coarse types), as LM-BFF and DPZero run it on RoBERTa:
"<mask>: {question}" with Description / Entity / Expression / Human / Location / Number."""

from __future__ import annotations

from typing import Optional

from zofw.slots.task import Example
from zofw_tasks.classification import (ClassificationOptions, ClassificationTask, Columns, Labels, Pair,
                                       Template)

# LM-BFF's words for its labels 0 … 5 (its files number the classes in this order); one RoBERTa token each
WORDS = ("Description", "Entity", "Expression", "Human", "Location", "Number")
# The hub's CogComp/trec numbers its coarse labels ABBR, ENTY, DESC, HUM, LOC, NUM: abbreviation questions
# are LM-BFF's "Expression" (2), descriptions its "Description" (0).
HUB_TO_LMBFF = {0: 2, 1: 1, 2: 0, 3: 3, 4: 4, 5: 5}


class TRECOptions(ClassificationOptions):
    dataset: str = "CogComp/trec"  # hub name (text, coarse_label), used for a split that no local file gives
    config: Optional[str] = None
    # masked: LM-BFF on RoBERTa, the published setting. causal: zofw's own "Question: …\nType:" + word, since
    # LM-BFF's mask comes before the question and no paper runs TREC on OPT.
    template: Template = "masked"


class TREC(ClassificationTask):
    """TREC six-way question type: "<mask>: {question}" with Description/Entity/…/Number; accuracy."""

    name = "trec"
    Options = TRECOptions
    options: TRECOptions
    hub_eval_split = "test"  # TREC has no validation split; LM-BFF tests on its 500 test questions
    # LM-BFF's files: CSV "label,question" without header; a header file names the text sentence or text
    columns = Columns(text_a=("sentence", "text", "question"))
    labels = Labels.numbered(len(WORDS))
    headerless = True
    hub_columns = Columns(text_a=("text",), label=("coarse_label",))
    hub_labels = Labels.renumbered(HUB_TO_LMBFF)

    def example(self, record: Pair) -> Example:
        choices = tuple(" " + word for word in WORDS)  # the word carries its space, as LM-BFF's label words
        if self.options.template == "masked":
            # `*cls**mask*:*+sent_0**sep+*`: nothing before the mask, then ":" and " {question}"
            return Example(prompt="", answers=(choices[record.label],), choices=choices, label=record.label,
                           suffix=f": {record.text_a}")
        return Example(prompt=f"Question: {record.text_a}\nType:", answers=(choices[record.label],),
                       choices=choices, label=record.label)
