"""Documentation contracts: every hook has a section in docs/hooks.md."""

from __future__ import annotations

from pathlib import Path

from zofw.plugins import plugin_manager

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_hook_is_documented():
    text = (DOCS / "hooks.md").read_text()
    hooks = [name for name in dir(plugin_manager().hook) if name.startswith("register_")]
    from zofw.registry import SLOTS

    assert sorted(hooks) == sorted(hook for hook, _ in SLOTS.values())  # one hook per slot, each documented
    missing = [name for name in hooks if f"## {name}" not in text]
    assert not missing, f"hooks missing from docs/hooks.md: {missing}"


def test_every_recipe_key_is_documented():
    from zofw.config import PrivacyConfig, Recipe, TrainConfig

    text = (DOCS / "recipes.md").read_text()
    keys = [*Recipe.model_fields, *PrivacyConfig.model_fields, *TrainConfig.model_fields]
    missing = [key for key in keys if f"`{key}`" not in text and f"[{key}]" not in text]
    assert not missing, f"recipe keys missing from docs/recipes.md: {missing}"


def test_every_registered_component_is_documented():
    from zofw.plugins import registries

    text = (DOCS / "recipes.md").read_text() + (DOCS / "architecture.md").read_text()
    first_party = {"zo", "privacy", "hf", "tasks"}  # installed third-party plugins document themselves
    missing = [entry.name for registry in registries().values() for entry in registry
               if entry.plugin in first_party and f"`{entry.name}`" not in text]
    assert not missing, f"components missing from docs: {missing}"


def test_the_k_direction_estimator_of_the_plugin_guide_honours_the_contract():
    """docs/plugins.md writes a K-direction estimator from the documented contract alone: run it."""
    from zofw.testing import check_estimator

    text = (DOCS / "plugins.md").read_text()
    section = text[text.index("## A K-direction estimator"):]
    code = section[section.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    namespace: dict = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    check_estimator(namespace["AveragedForward"])
    check_estimator(namespace["AveragedForward"], namespace["AveragedForwardOptions"](directions=1))
