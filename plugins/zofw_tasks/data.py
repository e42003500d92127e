"""Where a task's examples come from: local files when given, else the Hugging Face hub.

Every task reads its splits the same way, so the rules live here once:
- ``eval`` comes from ``eval_path`` when given;
- ``train`` comes from ``path`` when given; with ``path`` but no ``eval_path``, the file is split into
  a train part and a disjoint, seed-independent eval part (see :mod:`zofw_tasks.sampling`);
- a split with no file comes from the hub (``train``, or the task's evaluation split), loaded lazily.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

from pydantic import Field, ValidationError

from zofw.errors import BadInput
from zofw.slots.base import Options

Split = Literal["train", "eval"]
Part = Literal["all", "train", "eval"]  # which part of a local file a split reads


class DataOptions(Options):
    """Options every file-or-hub task shares; tasks add their hub name and prompt settings."""

    path: Optional[str] = None  # local training file; without eval_path, also the source of the eval part
    eval_path: Optional[str] = None  # local evaluation file
    n_train: int = Field(1000, gt=0)  # training examples drawn with the seed (MeZO/DPZero: 1000); all if fewer
    n_eval: int = Field(1000, gt=0)  # evaluation examples drawn with the seed; all if fewer
    # With path but no eval_path, the eval part is split off the training file. A private run refuses to
    # evaluate on it (unprotected, un-noised metrics of private data) unless the recipe declares it public.
    held_out_public: bool = False
    # The hub split evaluated on when no eval file is given; None: the one the papers test on (the task's
    # default, e.g. MNLI's "validation_matched"). Name another ("validation_mismatched") to change it.
    eval_split: Optional[str] = None


@dataclass(frozen=True)
class FileSource:
    path: Path
    key: str  # the option that named the file, for error messages: "task.path"
    part: Part

    def where(self) -> str:
        return f"{self.key}: {self.path}"


@dataclass(frozen=True)
class HubSource:
    split: Literal["train", "validation"]


def source_for(split: Split, options: DataOptions) -> Union[FileSource, HubSource]:
    """The file (and part of it) or hub split that ``split`` reads, as the module docstring says."""
    if split == "eval" and options.eval_path is not None:
        return FileSource(Path(options.eval_path).expanduser(), "task.eval_path", "all")
    if options.path is not None:
        part: Part = "all" if split == "train" and options.eval_path is not None else split
        return FileSource(Path(options.path).expanduser(), "task.path", part)
    return HubSource("train" if split == "train" else "validation")


def unprotected_held_out(options: DataOptions) -> bool:
    """Whether the eval split is a part of the training file that the recipe did not declare public."""
    return options.path is not None and options.eval_path is None and not options.held_out_public


def require_file(key: str, path: Path) -> None:
    """Raise BadInput naming ``key`` unless ``path`` is an existing file."""
    if not path.exists():
        raise BadInput(f"{key}: no such file: {path}")
    if not path.is_file():
        raise BadInput(f"{key}: not a file: {path}")


def check_files(options: DataOptions) -> None:
    """The cheap check of :meth:`Component.check`: every file the options name exists."""
    for key, value in (("task.path", options.path), ("task.eval_path", options.eval_path)):
        if value is not None:
            require_file(key, Path(value).expanduser())


def read_text(source: FileSource) -> str:
    require_file(source.key, source.path)  # again at load: check() may have run long ago, or not at all
    try:
        return source.path.read_text(encoding="utf-8-sig")  # -sig: tolerate a byte-order mark
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"{source.where()}: cannot read: {one_line(error)}") from None


def one_line(error: BaseException) -> str:
    """An exception as one line: BadInput messages are one line by contract."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def first_problem(error: ValidationError) -> str:
    """The first problem of a file-schema error, by its path in the file: ``nfl_1.qa_pairs.0.question: …``."""
    first = error.errors()[0]
    where = ".".join(map(location_part, first["loc"])) or "top level"
    more = len(error.errors()) - 1
    return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")


def location_part(part: object) -> str:
    """A key of a file's JSON as a message shows it: quoted and escaped where it is not plain text (a key
    may hold a newline, and a message is one line)."""
    text = str(part)
    if not text.isprintable() or not text:
        text = json.dumps(text)
    return text if len(text) <= 60 else text[:57] + "..."


def hub_name(dataset: str, config: Optional[str]) -> str:
    return dataset if config is None else f"{dataset}/{config}"


def load_hub(dataset: str, config: Optional[str], split: str) -> Any:
    """A hub split as a ``datasets.Dataset``: indexable rows, converted only after subsampling."""
    name = hub_name(dataset, config)
    try:
        import datasets  # lazily: local files must work without touching the hub machinery
    except ImportError as error:
        raise BadInput(f"cannot load dataset '{name}': the 'datasets' package is missing ({one_line(error)}); "
                       "install it or give task.path") from None
    try:
        return datasets.load_dataset(dataset, config, split=split)
    except Exception as error:  # network, auth, unknown name, cache: all are the user's input to fix
        raise BadInput(f"cannot load dataset '{name}' split '{split}' from the hub (offline?): "
                       f"{type(error).__name__}: {one_line(error)}; or give task.path") from None


def require_columns(rows: Any, where: str, columns: Sequence[str]) -> None:
    """Fail with one line if a hub split lacks the columns a task reads (a look-alike dataset name)."""
    present = set(getattr(rows, "column_names", None) or (rows[0].keys() if len(rows) else ()))
    missing = [column for column in columns if column not in present]
    if missing:
        raise BadInput(f"{where} lacks column(s) {', '.join(missing)} "
                       f"(has {', '.join(sorted(present)) or 'none'})")
