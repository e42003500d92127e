"""Every task loads its local files, builds its prompts and tokenizes them with the real RoBERTa (masked
templates) and OPT (causal templates) tokenizers of ../shared/data/tokenizers: the mask sits where LM-BFF puts
it, label words are one token where the paper needs it, and answers join their prompt without a merged token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zofw_tasks.boolq import BoolQ, BoolQOptions
from zofw_tasks.drop import Drop, DropOptions
from zofw_tasks.nli import CB, MNLI, RTE, SNLI, CBOptions, MNLIOptions, RTEOptions, SNLIOptions
from zofw_tasks.squad import Squad, SquadOptions
from zofw_tasks.sst2 import SST2, SST2Options
from zofw_tasks.sst5 import SST5, SST5Options
from zofw_tasks.trec import TREC, TRECOptions

MASK, ROBERTA_BOS, ROBERTA_EOS, OPT_BOS, NEWLINE = 50264, 0, 2, 2, 50118


@pytest.fixture(scope="module")
def roberta(shared_data):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(shared_data / "tokenizers" / "roberta"))


@pytest.fixture(scope="module")
def opt(shared_data):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(shared_data / "tokenizers" / "opt"))


@pytest.fixture(scope="module")
def files(shared_data, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """(train file, eval file) of every task: the shared real files, and for SNLI, MNLI and SQuAD (which
    ../shared/data lacks) small files in their official layouts."""
    made = tmp_path_factory.mktemp("official-layouts")
    pairs = [("A man is sleeping on a bench.", "A person rests.", "entailment"),
             ("Two kids play football", "Nobody is outside.", "contradiction"),
             ("A woman reads a book.", "She is a student.", "neutral")] * 4
    header = "index\tcaptionID\tpairID\tsentence1\tsentence2\tlabel1\tgold_label\n"
    (made / "snli.tsv").write_text(header + "".join(f"{i}\tc\tp\t{a}\t{b}\t{g}\t{g}\n" for i, (a, b, g) in enumerate(pairs)))
    (made / "mnli.jsonl").write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "gold_label": g}) + "\n"
                                             for a, b, g in pairs))
    (made / "squad.json").write_text(json.dumps({"version": "1.1", "data": [{"title": "Super_Bowl_50", "paragraphs": [
        {"context": "The Denver Broncos defeated the Carolina Panthers 24-10 in Santa Clara.", "qas": [
            {"id": "1", "question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 4}]},
            {"id": "2", "question": "Where?", "answers": [{"text": "Santa Clara", "answer_start": 58}]}]}]}]}))
    lmbff, superglue = shared_data / "lmbff", shared_data / "superglue"
    both = lambda path: (str(path), str(path))  # noqa: E731 - one file for both splits
    return {
        "sst2": (str(lmbff / "SST-2" / "train.tsv"), str(lmbff / "SST-2" / "test.tsv")),
        "sst2-glue": (str(shared_data / "sst2" / "train.tsv"), str(shared_data / "sst2" / "dev.tsv")),
        "sst5": (str(lmbff / "sst-5" / "train.tsv"), str(lmbff / "sst-5" / "test.tsv")),
        "trec": (str(lmbff / "trec" / "train.csv"), str(lmbff / "trec" / "test.csv")),
        "rte": both(superglue / "RTE" / "val.jsonl"), "cb": both(superglue / "CB" / "val.jsonl"),
        "boolq": both(superglue / "BoolQ" / "val.jsonl"), "snli": both(made / "snli.tsv"),
        "mnli": both(made / "mnli.jsonl"), "squad": both(made / "squad.json"),
        "drop": both(shared_data / "drop" / "drop_train_sample.json"),
    }


# (task, options, files key, template): every task with every template it offers
SETTINGS = [
    (SST2, SST2Options, "sst2", "masked"), (SST2, SST2Options, "sst2-glue", "causal"),
    (SST5, SST5Options, "sst5", "masked"), (SST5, SST5Options, "sst5", "causal"),
    (TREC, TRECOptions, "trec", "masked"), (TREC, TRECOptions, "trec", "causal"),
    (SNLI, SNLIOptions, "snli", "masked"), (SNLI, SNLIOptions, "snli", "causal"),
    (MNLI, MNLIOptions, "mnli", "masked"), (MNLI, MNLIOptions, "mnli", "causal"),
    (RTE, RTEOptions, "rte", "masked"), (RTE, RTEOptions, "rte", "causal"),
    (CB, CBOptions, "cb", "masked"), (CB, CBOptions, "cb", "causal"),
    (BoolQ, BoolQOptions, "boolq", None), (Squad, SquadOptions, "squad", None), (Drop, DropOptions, "drop", None),
]


def examples_of(task_class, options, paths, template):
    extra = {} if template is None else {"template": template}
    task = task_class(options(path=paths[0], eval_path=paths[1], n_train=24, n_eval=24, **extra))
    return task.load("train", 7) + task.load("eval", 7)


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


MASKED = [s for s in SETTINGS if s[3] == "masked"]
CAUSAL = [s for s in SETTINGS if s[3] != "masked"]


@pytest.mark.parametrize("task_class, options, key, template", MASKED, ids=[s[2] for s in MASKED])
def test_masked_templates_with_the_roberta_tokenizer(task_class, options, key, template, files, roberta):
    examples = examples_of(task_class, options, files[key], template)
    assert len(examples) >= 24
    for example in examples:
        tokens = roberta(example.prompt + roberta.mask_token + example.suffix).input_ids
        assert tokens.count(MASK) == 1 and tokens[0] == ROBERTA_BOS and tokens[-1] == ROBERTA_EOS
        at = tokens.index(MASK)
        # LM-BFF encodes the template's parts one by one; the joined text must give the same tokens
        assert tokens[1:at] == ids(roberta, example.prompt) and tokens[at + 1:-1] == ids(roberta, example.suffix)
        words = [ids(roberta, choice) for choice in example.choices]
        assert all(len(word) == 1 for word in words), words  # LM-BFF: one token per label word
        assert len({word[0] for word in words}) == len(words)
        assert example.answers == (example.choices[example.label],)


@pytest.mark.parametrize("task_class, options, key, template", CAUSAL, ids=[f"{s[2]}-{s[3] or 'causal'}" for s in CAUSAL])
def test_causal_templates_with_the_opt_tokenizer(task_class, options, key, template, files, opt):
    examples = examples_of(task_class, options, files[key], template)
    assert len(examples) >= 4  # 2 x 24, or the whole of a small hand-made file (2 x 2)
    for example in examples:
        prompt = opt(example.prompt).input_ids
        assert prompt[0] == OPT_BOS and example.suffix == ""  # the causal adapter reads no suffix
        continuations = example.choices or example.answers
        for continuation in continuations:
            # the adapter tokenizes prompt and answer apart (MeZO takes the answer's tokens off the joined
            # text): the two agree only if no token straddles the boundary
            assert ids(opt, example.prompt + continuation) == prompt[1:] + ids(opt, continuation)
        if task_class.kind == "generation":
            assert all(ids(opt, answer)[-1] == NEWLINE for answer in example.answers)  # it learns to stop


def test_label_words_are_single_tokens_where_the_papers_need_it(roberta, opt):
    # LM-BFF's words (RoBERTa, masked: one token is the model's whole answer)
    for word in ["terrible", "bad", "okay", "good", "great", "Yes", "Maybe", "No", "Description", "Entity",
                 "Expression", "Human", "Location", "Number"]:
        assert len(ids(roberta, " " + word)) == 1, word
    # MeZO's SST-2 words on OPT (the two tokenizers share their ids: the same vocabulary)
    assert [ids(opt, w) for w in (" terrible", " great")] == [[6587], [372]] == [ids(roberta, w) for w in
                                                                                  (" terrible", " great")]
