"""Hook specifications: the one way a plugin adds components to zofw.

Each hook receives a ``register`` callback; call it once per component class. The host collects what
was registered into one registry per slot (see :mod:`zofw.registry`), where name clashes fail loudly.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("zofw")
hookimpl = pluggy.HookimplMarker("zofw")

Register = Callable[[type], None]


# --- optimisation -------------------------------------------------------------------------------


@hookspec
def register_estimators(register: Register) -> None:
    """Register gradient estimators (subclasses of :class:`zofw.slots.estimator.Estimator`).

    :param register: call with each estimator class.
    """


@hookspec
def register_clippers(register: Register) -> None:
    """Register per-example clipping rules (subclasses of :class:`zofw.slots.clipper.Clipper`).

    :param register: call with each clipper class.
    """


@hookspec
def register_schedules(register: Register) -> None:
    """Register step-size and smoothing schedules (subclasses of :class:`zofw.slots.schedule.Schedule`).

    :param register: call with each schedule class.
    """


# --- privacy ------------------------------------------------------------------------------------


@hookspec
def register_noise(register: Register) -> None:
    """Register noise mechanisms (subclasses of :class:`zofw.slots.noise.Noise`).

    :param register: call with each noise class.
    """


@hookspec
def register_accountants(register: Register) -> None:
    """Register privacy accountants (subclasses of :class:`zofw.slots.accountant.Accountant`).

    :param register: call with each accountant class.
    """


# --- models and data ----------------------------------------------------------------------------


@hookspec
def register_models(register: Register) -> None:
    """Register model adapters (subclasses of :class:`zofw.slots.model.ModelAdapter`).

    :param register: call with each model adapter class.
    """


@hookspec
def register_tasks(register: Register) -> None:
    """Register tasks: data, prompt and metric (subclasses of :class:`zofw.slots.task.Task`).

    :param register: call with each task class.
    """
