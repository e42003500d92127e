"""The file formats task data comes in, read defensively: delimited tables, JSON lines, JSON documents.

Whatever a file holds, reading it either yields rows or raises :class:`BadInput` with one line that names
the option, the file and (for line formats) the line: a user who points ``task.path`` at the wrong file
must learn which file and where, never read a traceback.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Any, Iterator

from zofw.errors import BadInput
from zofw_tasks.data import FileSource, one_line, read_text

# No real data line comes near this (the longest BoolQ row is about 5 KiB); a longer "line" means a wrong
# file (binary, a JSON document read as a table). Bounding it also bounds the work per row, and it is the
# csv module's own field limit, which would otherwise fail with an exception of its own.
MAX_LINE_BYTES = 128 * 1024


def shown(value: Any) -> str:
    """A value for an error message: short, one line, and safe for deeply nested input (no repr of it)."""
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as editors show it
    text: str


def data_lines(source: FileSource) -> Iterator[Line]:
    """The non-blank lines of a line-based file, each at most MAX_LINE_BYTES long."""
    text = read_text(source)
    # split on "\n" only: str.splitlines would also break at \x1c, \u2028 …, which occur inside real text
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        # a character is at most 4 bytes: only a line that might be too long is encoded to measure it
        if len(line) > MAX_LINE_BYTES // 4 and len(line.encode("utf-8")) > MAX_LINE_BYTES:
            raise BadInput(f"{source.where()}: line {number}: longer than {MAX_LINE_BYTES // 1024} KiB "
                           f"({len(line.encode('utf-8'))} bytes); not a data line of this format")
        if line.strip():
            yield Line(number, line)


def split_line(line: Line, delimiter: str, source: FileSource) -> list[str]:
    """The fields of one table line.

    Tab-separated files (GLUE, LM-BFF) are split on tabs only: their quotes are text, not quoting. Comma-
    separated files (LM-BFF's TREC) quote fields that contain commas, so they go through ``csv``, strictly,
    and one line is one row: a quote left open is an error on that line, not a silent merge of lines.
    """
    if delimiter == "\t":
        return line.text.split("\t")
    try:
        return next(csv.reader([line.text], delimiter=delimiter, strict=True))
    except csv.Error as error:
        raise BadInput(f"{source.where()}: line {line.number}: not valid CSV: {one_line(error)}") from None


def parse_json(text: str, where: str) -> Any:
    """``json.loads`` with its failures as one-line BadInput (a nesting deeper than Python's recursion limit
    raises RecursionError inside the decoder)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(f"{where}: invalid JSON: {error}") from None
    except RecursionError:
        raise BadInput(f"{where}: JSON nested too deeply") from None


def json_lines(source: FileSource) -> Iterator[tuple[Line, dict]]:
    """The objects of a JSON-lines file (SuperGLUE, the SNLI/MultiNLI releases), one per non-blank line."""
    for line in data_lines(source):
        value = parse_json(line.text, f"{source.where()}: line {line.number}")
        if not isinstance(value, dict):
            raise BadInput(f"{source.where()}: line {line.number}: expected a JSON object, got {shown(value)}")
        yield line, value


def json_document(source: FileSource) -> Any:
    """A whole-file JSON document (DROP, SQuAD). Such files may be one line of many megabytes, so no line
    limit applies; the schema check that follows bounds what is accepted."""
    return parse_json(read_text(source), source.where())


def is_json_lines(source: FileSource) -> bool:
    """JSON lines by the file's name (``.jsonl``, ``.json``); anything else is read as a table."""
    return source.path.suffix.lower() in (".jsonl", ".json")
