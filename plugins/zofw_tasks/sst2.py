"""SST-2 sentiment (GLUE) with the MeZO (causal) and LM-BFF (masked) prompts; label words terrible/great."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from zofw.slots.task import Example
from zofw_tasks.classification import ClassificationOptions, ClassificationTask, Columns, Labels, Pair, Template

CHOICES = (" terrible", " great")  # label 0 (negative), 1 (positive); one token each with a leading space
# What follows the answer slot. MeZO's causal template ends at the label word. LM-BFF's masked template
# `*cls**sent_0*_It_was*mask*.*sep+*` puts "." right after the mask, with no space: the label word token
# (" great") carries the space, so the text reads "… It was great." exactly as LM-BFF tokenises it.
SUFFIX = {"causal": "", "masked": "."}


class SST2Options(ClassificationOptions):
    dataset: str = "glue"  # hub name, used for a split that no local file gives
    config: Optional[str] = "sst2"  # hub configuration of `dataset`
    n_eval: int = Field(872, gt=0)  # the whole GLUE dev set
    template: Template = "causal"  # causal: MeZO on OPT; masked: LM-BFF on RoBERTa


def sentiment_example(sentence: Pair, choices: tuple[str, ...], template: Template) -> Example:
    # MeZO and LM-BFF alike: "{sentence} It was" then the label word (the masked LM's mask)
    return Example(prompt=f"{sentence.text_a} It was", answers=(choices[sentence.label],), choices=choices,
                   label=sentence.label, suffix=SUFFIX[template])


class SST2(ClassificationTask):
    """SST-2 binary sentiment: "{sentence} It was" + terrible/great; accuracy."""

    name = "sst2"
    Options = SST2Options
    options: SST2Options
    # GLUE's TSV (header sentence, label); LM-BFF's test file "label sentence" has no header
    columns = Columns(text_a=("sentence",))
    labels = Labels.numbered(2)
    headerless = True

    def example(self, record: Pair) -> Example:
        return sentiment_example(record, CHOICES, self.options.template)
