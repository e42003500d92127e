"""What every component shares: a registry name, a one-line summary and a typed options model."""

from __future__ import annotations

import inspect
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Options of a component. Unknown keys are errors, so a typo in a recipe never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component:
    """A pluggable part of a run. Subclasses set ``name``, a docstring and an ``Options`` model."""

    name: ClassVar[str]
    Options: ClassVar[type[Options]] = Options

    def __init__(self, options: Options) -> None:
        self.options = options

    def recorded_options(self) -> dict:
        """The options as the run directory records them (the resolved recipe): defaults filled in."""
        return self.options.model_dump(mode="json", exclude_none=True)

    def check(self) -> None:
        """Cheap checks of the options against the world (files exist); raise BadInput naming the key path."""

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring, shown by ``zofw list``."""
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""
