"""The loading shape every file-or-hub task shares, written once.

A task says how to read its file format into records, how to turn a hub row into a record, which group
key keeps related records on one side of a held-out split, and how a record becomes a prompted
:class:`Example`; :class:`DatasetTask` does the rest in the same order for every task:
source (file or hub, :mod:`zofw_tasks.data`) → pool of records (the file's train or eval part, or the lazily
converted hub split) → the seeded draw (:meth:`DatasetTask.draw`) → examples.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Generic, Optional, Sequence, TypeVar

from zofw.slots.task import Example, Task
from zofw_tasks.data import (DataOptions, FileSource, Split, check_files, hub_name, load_hub, source_for,
                             unprotected_held_out)
from zofw_tasks.sampling import subsample, take_part

R = TypeVar("R")


class LazyRows(Sequence):
    """Hub rows seen as records, each converted only when read: a draw of 1000 from a 500k-row split then
    converts 1000 rows, not 500k. ``indices`` picks the usable rows; ``labels`` (classification) holds their
    labels, read from the label column at once, so a per-class draw needs no conversion either."""

    def __init__(self, rows: Any, convert: Callable[[Any, int], Any], indices: Optional[Sequence[int]] = None,
                 labels: Optional[Sequence[int]] = None) -> None:
        self.rows, self.convert = rows, convert
        self.indices = range(len(rows)) if indices is None else indices
        self.labels = labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]  (integers only: all a draw needs)
        index = self.indices[i]
        return self.convert(self.rows[index], index)


class DatasetTask(Task, Generic[R]):
    """A task whose examples come from local files or a public dataset by name, drawn with a seed."""

    Options = DataOptions
    options: DataOptions
    # the hub split evaluated on when the recipe names none (task.eval_split): the split the papers test on
    hub_eval_split: ClassVar[str] = "validation"

    # --- what each task provides --------------------------------------------------------------------

    def read_file(self, source: FileSource) -> list[R]:
        """Every usable record of a local file, in file order; BadInput names any problem."""
        raise NotImplementedError

    def hub_pool(self, rows: Any, where: str) -> Sequence[Optional[R]]:
        """The records of a hub split (typically :class:`LazyRows`); a row may convert to None (unusable)."""
        raise NotImplementedError

    def group(self, record: R) -> str:
        """The key that keeps related records (one passage's questions, copies of a sentence) on one side
        of the held-out split of a lone training file."""
        raise NotImplementedError

    def example(self, record: R) -> Example:
        raise NotImplementedError

    # --- the shared shape ---------------------------------------------------------------------------

    def check(self) -> None:
        check_files(self.options)

    def evaluates_on_private_data(self) -> bool:
        return unprotected_held_out(self.options)

    def hub_dataset(self) -> tuple[str, Optional[str]]:
        """The hub name and configuration from the options (``dataset``, and ``config`` where a task has one)."""
        return getattr(self.options, "dataset"), getattr(self.options, "config", None)

    def load(self, split: Split, seed: int) -> list[Example]:
        source = source_for(split, self.options)
        pool: Sequence[Optional[R]]
        if isinstance(source, FileSource):
            pool = take_part(self.read_file(source), source, self.group)
        else:
            dataset, config = self.hub_dataset()
            name = source.split if source.split == "train" else (self.options.eval_split or self.hub_eval_split)
            pool = self.hub_pool(load_hub(dataset, config, name), f"dataset '{hub_name(dataset, config)}' split '{name}'")
        return [self.example(record) for record in self.draw(pool, split, seed) if record is not None]

    def draw(self, pool: Sequence[Optional[R]], split: Split, seed: int) -> list[Optional[R]]:
        """``n_train`` / ``n_eval`` records drawn with the seed (all if fewer); classification overrides it
        for k per class."""
        return subsample(pool, self.options.n_train if split == "train" else self.options.n_eval, seed)
