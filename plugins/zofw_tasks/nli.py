"""Natural language inference: SNLI, MNLI and RTE (LM-BFF on RoBERTa, as DPZero runs them) and CB (MeZO on OPT).

One premise, one hypothesis, does the first entail the second? The prompts:
- masked (LM-BFF ``*cls**sent-_0*?*mask*,*+sentl_1**sep+*``): the premise with "?" for its full stop, the
  mask, a comma and the hypothesis lower-cased at its start: "A man is sleeping? <mask>, a person rests."
  Words " Yes" (entailment), " Maybe" (neutral), " No" (contradiction / not entailment).
- causal (MeZO, from PromptSource): RTE's 'premise\\nDoes this mean that "hypothesis" is true? Yes or No?\\n'
  and CB's 'Suppose premise Can we infer that "hypothesis"? Yes, No, or Maybe?\\n', the word right after the
  newline ("Yes", no space). SNLI and MNLI use CB's: the same three-way question (no paper runs them on OPT).

Local files: GLUE's TSV (header with sentence1, sentence2 and gold_label or label; LM-BFF uses these) or
JSON lines (SuperGLUE's premise / hypothesis / label; the SNLI and MultiNLI releases' sentence1 / sentence2
/ gold_label), told apart by the file's name: .jsonl / .json are JSON lines.
"""

from __future__ import annotations

from typing import ClassVar, Optional

from zofw.slots.task import Example
from zofw_tasks.classification import (ClassificationOptions, ClassificationTask, Columns, Labels, Pair, Template,
                                       lower_first, without_final_punctuation)

COLUMNS = Columns(text_a=("premise", "sentence1"), text_b=("hypothesis", "sentence2"), label=("gold_label", "label"))
# the label word of each relation: LM-BFF's mapping, and MeZO's verbalizers (the same words)
WORD = {"entailment": "Yes", "neutral": "Maybe", "contradiction": "No", "not_entailment": "No"}
CAUSAL_PROMPT = {
    "rte": '{premise}\nDoes this mean that "{hypothesis}" is true? Yes or No?\n',  # MeZO's RTETemplate
    "three_way": 'Suppose {premise} Can we infer that "{hypothesis}"? Yes, No, or Maybe?\n',  # MeZO's CBTemplate
}


class NLIOptions(ClassificationOptions):
    dataset: str
    config: Optional[str] = None
    template: Template = "masked"


class NLITask(ClassificationTask):
    """Base of the NLI tasks: the relation names by class index (as the hub numbers them) and the prompts."""

    columns = COLUMNS
    relations: ClassVar[tuple[str, ...]]
    causal_prompt: ClassVar[str] = CAUSAL_PROMPT["three_way"]
    options: NLIOptions

    def example(self, record: Pair) -> Example:
        words = tuple(WORD[relation] for relation in self.relations)
        if self.options.template == "masked":
            # the label word token carries its space (" Yes"), as LM-BFF's label words do
            return Example(prompt=f"{without_final_punctuation(record.text_a)}?", answers=(" " + words[record.label],),
                           choices=tuple(" " + word for word in words), label=record.label,
                           suffix=f", {lower_first(record.text_b)}")
        prompt = self.causal_prompt.format(premise=record.text_a, hypothesis=record.text_b)
        return Example(prompt=prompt, answers=(words[record.label],), choices=words, label=record.label)


class SNLIOptions(NLIOptions):
    dataset: str = "stanfordnlp/snli"  # hub name (premise, hypothesis, label; -1 where annotators disagreed)


class SNLI(NLITask):
    """SNLI three-way entailment (LM-BFF prompt, Yes/Maybe/No); accuracy."""

    name = "snli"
    Options = SNLIOptions
    options: SNLIOptions
    relations = ("entailment", "neutral", "contradiction")
    labels = Labels.named(relations, unlabelled=("-", "-1"))  # "-": no majority label in the release
    hub_eval_split = "test"  # LM-BFF tests on SNLI's test set


class MNLIOptions(NLIOptions):
    dataset: str = "glue"
    config: Optional[str] = "mnli"


class MNLI(NLITask):
    """MultiNLI three-way entailment (LM-BFF prompt, Yes/Maybe/No); accuracy on the matched dev set."""

    name = "mnli"
    Options = MNLIOptions
    options: MNLIOptions
    relations = ("entailment", "neutral", "contradiction")
    labels = Labels.named(relations, unlabelled=("-", "-1"))
    hub_eval_split = "validation_matched"  # LM-BFF's MNLI test set; task.eval_split picks the mismatched one


class RTEOptions(NLIOptions):
    dataset: str = "glue"  # GLUE's RTE (sentence1, sentence2, label) holds the same pairs as SuperGLUE's
    config: Optional[str] = "rte"
    # masked: LM-BFF on RoBERTa (DPZero); causal: MeZO's prompt on OPT
    template: Template = "masked"


class RTE(NLITask):
    """RTE two-way entailment (LM-BFF prompt Yes/No, or MeZO's); accuracy."""

    name = "rte"
    Options = RTEOptions
    options: RTEOptions
    relations = ("entailment", "not_entailment")
    labels = Labels.named(relations)
    causal_prompt = CAUSAL_PROMPT["rte"]


class CBOptions(NLIOptions):
    dataset: str = "aps/super_glue"  # SuperGLUE on the hub (premise, hypothesis, label)
    config: Optional[str] = "cb"
    # causal: MeZO's prompt on OPT, the published setting; masked: LM-BFF's NLI prompt (no paper runs CB so)
    template: Template = "causal"


class CB(NLITask):
    """CommitmentBank three-way entailment (MeZO's prompt, Yes/No/Maybe); accuracy."""

    name = "cb"
    Options = CBOptions
    options: CBOptions
    relations = ("entailment", "contradiction", "neutral")  # SuperGLUE's order
    labels = Labels.named(relations)
