"""Documentation contracts: every hook has a section in docs/hooks.md."""

from __future__ import annotations

from pathlib import Path

from zofw.plugins import plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_hook_is_documented():
    text = (DOCS / "hooks.md").read_text()
    hooks = [name for name in dir(plugin_manager().hook) if name.startswith("register_")]
    assert len(hooks) == 6
    missing = [name for name in hooks if f"## {name}" not in text]
    assert not missing, f"hooks missing from docs/hooks.md: {missing}"
