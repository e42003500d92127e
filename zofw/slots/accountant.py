"""Privacy accountants: ε spent by the events of a privacy ledger."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any, ClassVar, Sequence

from zofw.errors import BadInput
from zofw.privacy.ledger import NORM_OF_MECHANISM, PrivacyEvent
from zofw.slots.base import Component

# The neighbouring relation each sampling scheme is accounted under (zofw.sampling says why).
RELATION_OF_SAMPLING = {"poisson": "add/remove-one", "fixed_size": "replace-one"}


class Accountant(Component):
    """Base class of privacy accountants.

    Every subclass's ``epsilon`` first checks each event against what the class declares (``mechanisms``,
    ``samplings``, the norm and relation these imply) and refuses anything else with one line: the check
    is installed by construction, so a third-party accountant cannot forget it.
    """

    # The ledger mechanisms (``Noise.mechanism``) it can compose: a recipe whose noise is not among them
    # is refused before anything runs, and ``epsilon`` refuses such events too.
    mechanisms: ClassVar[tuple[str, ...]] = ("gaussian",)
    # The sampling schemes it models (each with its relation, RELATION_OF_SAMPLING).
    samplings: ClassVar[tuple[str, ...]] = ("poisson",)
    # Whether ``epsilon`` is an upper bound on the true ε. Only upper bounds may calibrate σ; an
    # approximation (e.g. a central-limit estimate) is marked as such wherever its ε is shown.
    upper_bound: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("epsilon")
        if own is not None and not getattr(own, "checks_events", False):
            @functools.wraps(own)
            def checked(self: "Accountant", events: Sequence[PrivacyEvent], delta: float) -> float:
                for event in events:
                    self.check_event(event)
                if len({event.neighbouring for event in events}) > 1:
                    raise BadInput(f"accountant '{self.name}' cannot compose one ledger under two neighbouring "
                                   "relations")
                return own(self, events, delta)

            checked.checks_events = True  # type: ignore[attr-defined]
            cls.epsilon = checked  # type: ignore[method-assign]

    def refusal(self, event: PrivacyEvent) -> str | None:
        """Why this accountant cannot compose ``event``, or None when it can."""
        if event.mechanism not in self.mechanisms:
            return f"it composes {', '.join(self.mechanisms)} noise"
        if event.sampling not in self.samplings:
            return f"it models {', '.join(self.samplings)} sampling"
        relation = RELATION_OF_SAMPLING.get(event.sampling)
        if event.neighbouring != relation:
            return f"{event.sampling} sampling is accounted under {relation} neighbours"
        norm = NORM_OF_MECHANISM.get(event.mechanism)
        if norm is not None and event.sensitivity_norm != norm:
            return f"a {event.mechanism} multiplier must be relative to the {norm} sensitivity"
        if event.sampling == "fixed_size" and not event.dataset_size:
            return "a fixed_size event must carry the dataset size n"
        return None

    def check_event(self, event: PrivacyEvent) -> None:
        """The one-line refusal every accountant gives for an event it cannot compose."""
        reason = self.refusal(event)
        if reason is not None:
            raise BadInput(f"accountant '{self.name}' cannot compose {event.describe()}: {reason}")

    def epsilon(self, events: Sequence[PrivacyEvent], delta: float) -> float:
        """ε at ``delta`` of the composition of ``events`` (an upper bound where the method gives one)."""
        raise NotImplementedError

    def curve(self, event: PrivacyEvent, marks: Sequence[int], delta: float) -> list[float]:
        """ε after each of ``marks`` (increasing step counts) repetitions of ``event``: a run's ε so far,
        computed once for its planned schedule. One accountant call per mark here; accountants that can
        compose incrementally override it, and may return a value at a later count than asked (ε grows
        with the steps, so that is still an upper bound), never at an earlier one."""
        self.check_event(event)
        return [self.epsilon([replace(event, steps=t)], delta) for t in marks]
