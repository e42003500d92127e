"""The plugin manager: first-party and third-party plugins both arrive through entry-point group "zofw".

A plugin that cannot be used (it fails to import, implements a hook that does not exist, raises inside
a ``register_*`` hook, or registers something that is not a component) is skipped, never fatal: every
command still works, a one-line warning on stderr names the plugin and why, ``zofw plugins`` lists it
as broken, and a recipe that names one of its components is told which plugin failed. Two plugins
registering the same name stay an error (exit 2), since either choice would be a guess.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from functools import lru_cache
from typing import Any

import pluggy

from zofw import hookspecs
from zofw.registry import SLOTS, PluginConflict, Registry

ENTRY_POINT_GROUP = "zofw"

_distributions: dict[str, str] = {}  # plugin name -> "distribution version", for entry-point plugins
_broken: dict[str, dict[str, str]] = {}  # plugin name -> {"module", "distribution", "error"}: at load
_failing: dict[str, dict[str, str]] = {}  # the same, for register hooks at the latest registries() call
_warned: set[tuple[str, str]] = set()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _mark_broken(name: str, why: str, module: str = "", distribution: str = "",
                 into: dict[str, dict[str, str]] = _broken) -> None:
    """Record plugin ``name`` as skipped and warn once per process, in one line, on stderr."""
    into[name] = {"module": module, "distribution": distribution or _distributions.get(name, ""), "error": why}
    if (name, why) not in _warned:
        _warned.add((name, why))
        source = f" ({into[name]['distribution']})" if into[name]["distribution"] else ""
        print(f"warning: zofw plugin '{name}'{source} is skipped: {why}", file=sys.stderr)


def broken_plugins() -> dict[str, str]:
    """The plugins skipped in this process (at load, or by the latest :func:`registries`), with why."""
    plugin_manager()
    return {name: info["error"] for name, info in {**_broken, **_failing}.items()}


def _dist_label(dist: importlib.metadata.Distribution) -> str:
    name = dist.metadata["Name"] if dist.metadata is not None else None
    return f"{name or '?'} {dist.version}"


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every installed plugin that loads and checks registered."""
    pm = pluggy.PluginManager("zofw")
    pm.add_hookspecs(hookspecs)
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.has_plugin(ep.name) or pm.is_blocked(ep.name) \
                    or ep.name in _broken:
                continue
            label = _dist_label(dist)
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as error:  # a plugin's import must never take zofw down
                _mark_broken(ep.name, f"import of '{ep.value}' failed: {_one_line(error)}", ep.value, label)
                continue
            try:
                pm.register(plugin, name=ep.name)
            except Exception as error:  # e.g. a hook implementation whose arguments the spec lacks
                _mark_broken(ep.name, f"its hooks do not match zofw's: {_one_line(error)}", ep.value, label)
                continue
            _distributions[ep.name] = label
    while True:  # hook implementations that match no hook spec (a misspelled register_* name)
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as error:
            name = pm.get_name(error.plugin) or repr(error.plugin)
            module = getattr(error.plugin, "__name__", "")
            pm.unregister(error.plugin)
            hook = re.search(r"unknown hook '([^']*)'", str(error))
            _mark_broken(name, f"it implements a hook zofw does not have: {hook.group(1) if hook else error}", module)
    return pm


def registries() -> dict[str, Registry]:
    """Registries of every slot, built from the plugins registered right now.

    Each plugin registers into registries of its own first, so that a plugin that raises or registers
    something invalid is skipped whole (none of its components half-present); the survivors are then
    merged, where a name registered by two plugins is an error naming both.
    """
    pm = plugin_manager()
    staged: dict[str, dict[str, Registry]] = {}  # plugin name -> its own registries
    order: list[tuple[str, str]] = []  # (slot, plugin) in pluggy's call order
    failing: dict[str, dict[str, str]] = {}
    for slot, (hook, _) in SLOTS.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            name = impl.plugin_name
            if name in failing:
                continue
            own = staged.setdefault(name, {s: Registry(s) for s in SLOTS})

            def register(component: Any, _slot: str = slot, _own: dict[str, Registry] = own,
                         _name: str = name) -> None:
                _own[_slot].add(component, _name)

            try:
                impl.function(register=register)
            except PluginConflict as error:  # invalid component, or one name twice in this plugin
                _mark_broken(name, f"{hook}: {error}", getattr(impl.plugin, "__name__", ""), into=failing)
            except (Exception, SystemExit) as error:
                _mark_broken(name, f"{hook} raised {_one_line(error)}", getattr(impl.plugin, "__name__", ""),
                             into=failing)
            else:
                order.append((slot, name))
    _failing.clear()
    _failing.update(failing)
    merged = {slot: Registry(slot) for slot in SLOTS}
    for slot, name in order:
        if name in failing:  # failed in a later hook: none of its components
            continue
        for entry in staged[name][slot]:
            merged[slot].add(entry.component, name)  # raises PluginConflict on a clash between plugins
    return merged


def plugin_info() -> list[dict[str, str]]:
    """One record per plugin: its name, module, distribution, hooks, and "error" where it was skipped."""
    pm = plugin_manager()
    try:
        registries()  # finds plugins whose register hooks fail
    except PluginConflict:
        pass  # a clash between plugins: ``zofw list`` reports it; the plugins themselves are listed
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if name in _failing:
            continue
        rows.append({
            "name": name,
            "module": getattr(plugin, "__name__", type(plugin).__name__),
            "distribution": _distributions.get(name, ""),
            "hooks": ", ".join(sorted(h.name for h in pm.get_hookcallers(plugin) or [])),
            "error": "",
        })
    for name, info in sorted({**_broken, **_failing}.items()):
        rows.append({"name": name, "module": info["module"], "distribution": info["distribution"], "hooks": "",
                     "error": info["error"]})
    return rows
