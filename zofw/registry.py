"""One registry per slot, filled by the plugins' ``register_*`` hooks. Name clashes fail here, loudly."""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from zofw.errors import BadInput
from zofw.slots.accountant import Accountant
from zofw.slots.base import Component
from zofw.slots.clipper import Clipper
from zofw.slots.estimator import Estimator
from zofw.slots.model import ModelAdapter
from zofw.slots.noise import Noise
from zofw.slots.schedule import Schedule
from zofw.slots.task import Task

# slot name -> (hook that fills it, base class of its components)
SLOTS: dict[str, tuple[str, type[Component]]] = {
    "estimators": ("register_estimators", Estimator),
    "clippers": ("register_clippers", Clipper),
    "schedules": ("register_schedules", Schedule),
    "noise": ("register_noise", Noise),
    "accountants": ("register_accountants", Accountant),
    "models": ("register_models", ModelAdapter),
    "tasks": ("register_tasks", Task),
}


class PluginConflict(BadInput):
    """Two plugins registered the same name in one slot, or a plugin registered something invalid."""


@dataclass(frozen=True)
class Entry:
    name: str
    plugin: str
    component: type[Component]

    def summary(self) -> str:
        return self.component.summary()


class Registry:
    """The components of one slot, by name."""

    def __init__(self, slot: str) -> None:
        self.slot = slot
        self.entries: dict[str, Entry] = {}

    def add(self, component: type, plugin: str) -> None:
        base = SLOTS[self.slot][1]
        if not (isinstance(component, type) and issubclass(component, base)):
            raise PluginConflict(f"plugin '{plugin}' registered {component!r} as one of the {self.slot}, "
                                 f"but it is not a subclass of {base.__module__}.{base.__name__}")
        name = getattr(component, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginConflict(f"plugin '{plugin}' registered {component.__name__} without a name")
        if name in self.entries:
            raise PluginConflict(f"{self.slot} name '{name}' is registered twice: by plugin "
                                 f"'{self.entries[name].plugin}' and by plugin '{plugin}'")
        self.entries[name] = Entry(name, plugin, component)

    def get(self, name: str) -> Entry:
        if name not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none installed"
            from zofw.catalog import did_you_mean

            raise BadInput(f"unknown {self.slot} name '{name}'{did_you_mean(name, self.entries)} (available: {known})")
        return self.entries[name]

    def __iter__(self):
        return iter(sorted(self.entries.values(), key=lambda e: e.name))


def collect(pm: pluggy.PluginManager) -> dict[str, Registry]:
    """Ask every plugin to register its components, recording which plugin registered what."""
    registries = {slot: Registry(slot) for slot in SLOTS}
    for slot, (hook, _) in SLOTS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            def register(component: type, _slot: str = slot, _plugin: str = impl.plugin_name) -> None:
                registries[_slot].add(component, _plugin)

            impl.function(register=register)
    return registries
