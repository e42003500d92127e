"""SST-5 fine-grained sentiment, as LM-BFF and DPZero run it on RoBERTa: "{sentence} It was <mask>." with
terrible / bad / okay / good / great."""

from __future__ import annotations

from typing import Optional

from zofw.slots.task import Example
from zofw_tasks.classification import ClassificationOptions, ClassificationTask, Columns, Labels, Pair, Template
from zofw_tasks.sst2 import sentiment_example

# LM-BFF's words for labels 0 (very negative) … 4 (very positive); one RoBERTa token each with the space
CHOICES = (" terrible", " bad", " okay", " good", " great")


class SST5Options(ClassificationOptions):
    dataset: str = "SetFit/sst5"  # hub name (columns text, label), used for a split that no local file gives
    config: Optional[str] = None
    # masked: LM-BFF on RoBERTa, the published setting. causal: MeZO's SST-2 prompt with these five words
    # (no paper runs SST-5 on OPT).
    template: Template = "masked"


class SST5(ClassificationTask):
    """SST-5 five-way sentiment: "{sentence} It was" + terrible/bad/okay/good/great; accuracy."""

    name = "sst5"
    Options = SST5Options
    options: SST5Options
    hub_eval_split = "test"  # LM-BFF tests on SST-5's test set, labelled on the hub too
    # LM-BFF's files: "label<TAB>sentence", no header; a header file names its text sentence or text
    columns = Columns(text_a=("sentence", "text"))
    labels = Labels.numbered(5)
    headerless = True

    def example(self, record: Pair) -> Example:
        return sentiment_example(record, CHOICES, self.options.template)
