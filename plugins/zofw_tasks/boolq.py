"""BoolQ yes/no questions about a passage, as MeZO and DPZero run it on OPT (MeZO's default template):
"{passage} {Question}?\\n" then "Yes" or "No"."""

from __future__ import annotations

from typing import Optional

from zofw.slots.task import Example
from zofw_tasks.classification import ClassificationOptions, ClassificationTask, Columns, Labels, Pair

CHOICES = ("No", "Yes")  # label 0 (false), 1 (true); right after the newline, so without a leading space


class BoolQOptions(ClassificationOptions):
    dataset: str = "google/boolq"  # hub name (question, answer, passage), used where no local file is given
    config: Optional[str] = None


class BoolQ(ClassificationTask):
    """BoolQ: answer a yes/no question about a passage (MeZO's prompt); accuracy."""

    name = "boolq"
    Options = BoolQOptions
    options: BoolQOptions
    # SuperGLUE's JSON lines say label, the original release (and the hub) answer; both true / false
    columns = Columns(text_a=("passage",), text_b=("question",), label=("label", "answer"))
    labels = Labels.named(("false", "true"))

    def example(self, record: Pair) -> Example:
        # MeZO's BoolQTemplateV3: the question gets a "?" and a capital, and the answer follows a newline
        question = record.text_b if record.text_b.endswith("?") else record.text_b + "?"
        question = question[:1].upper() + question[1:]
        return Example(prompt=f"{record.text_a} {question}\n", answers=(CHOICES[record.label],), choices=CHOICES,
                       label=record.label)
