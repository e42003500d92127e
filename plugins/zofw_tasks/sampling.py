"""Deterministic data selection: the held-out eval part of a file, and seeded subsets of a pool (n items,
or k per class as LM-BFF's few-shot sets)."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import Callable, Sequence, TypeVar

from zofw.errors import BadInput
from zofw_tasks.data import FileSource

T = TypeVar("T")

EVAL_FRACTION = 0.3  # share of a lone training file's groups (passages, sentences) held out for evaluation


def in_eval_part(key: str, fraction: float = EVAL_FRACTION) -> bool:
    """Whether the group ``key`` belongs to the held-out eval part.

    A stable hash, not Python's salted ``hash()``, so the split is the same in every process and for every
    seed; and a threshold, not a rank, so a group never changes side when the file grows.
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def take_part(records: Sequence[T], source: FileSource, group: Callable[[T], str]) -> list[T]:
    """The records of ``source.part``: all, or the train/eval side of the split by ``group`` key.

    Splitting by group (a DROP passage, an SST-2 sentence) keeps every question about one passage, and
    every copy of one sentence, on the same side, so nothing evaluated was trained on.
    """
    if source.part == "all":
        chosen = list(records)
    else:
        held_out = source.part == "eval"
        chosen = [record for record in records if in_eval_part(group(record)) == held_out]
    if not chosen:
        what = "" if source.part == "all" else f" in its {source.part} part ({EVAL_FRACTION:.0%} of groups held out)"
        hint = "; give task.eval_path" if source.part != "all" else ""
        raise BadInput(f"{source.where()}: no usable examples{what}{hint}")
    return chosen


def subsample(pool: Sequence[T], n: int, seed: int) -> list[T]:
    """``n`` items of ``pool`` drawn without replacement with ``random.Random(seed)``; all if fewer.

    Indices are drawn, not items, so a lazy pool (a hub dataset) is read only where chosen.
    """
    if n >= len(pool):
        return [pool[i] for i in range(len(pool))]
    return [pool[i] for i in random.Random(seed).sample(range(len(pool)), n)]


def per_class(pool: Sequence[T], labels: Sequence[int], k: int, seed: int) -> list[T]:
    """``k`` items of every class present, drawn without replacement with ``random.Random(seed)``; all of a
    class if it has fewer. LM-BFF's k-shot training sets (DPZero on RoBERTa: k = 512), kept in pool order.

    ``labels[i]`` is the class of ``pool[i]``; taking them apart lets a lazy pool give its label column
    without converting its rows.
    """
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_class):  # a fixed class order, so the draw depends on the seed alone
        members = by_class[label]
        chosen.extend(members if k >= len(members) else rng.sample(members, k))
    return [pool[i] for i in sorted(chosen)]
