"""The plugin manager: first-party and third-party plugins both arrive through entry-point group "zofw"."""

from __future__ import annotations

from functools import lru_cache

import pluggy

from zofw import hookspecs
from zofw.errors import BadInput
from zofw.registry import Registry, collect

ENTRY_POINT_GROUP = "zofw"


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every installed plugin loaded and checked."""
    pm = pluggy.PluginManager("zofw")
    pm.add_hookspecs(hookspecs)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        pm.check_pending()  # catches misspelled hook implementations
    except Exception as error:  # a broken third-party plugin must not give a traceback
        raise BadInput(f"a zofw plugin failed to load: {type(error).__name__}: {error}") from error
    return pm


def registries() -> dict[str, Registry]:
    """Registries of every slot, built from the plugins registered right now."""
    return collect(plugin_manager())


def plugin_info() -> list[dict[str, str]]:
    """One record per loaded plugin: its name, module and distribution."""
    pm = plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        dist = dists.get(id(plugin))
        rows.append({
            "name": name,
            "module": getattr(plugin, "__name__", type(plugin).__name__),
            "distribution": f"{dist.project_name} {dist.version}" if dist else "",
            "hooks": ", ".join(sorted(h.name for h in pm.get_hookcallers(plugin) or [])),
        })
    return rows
