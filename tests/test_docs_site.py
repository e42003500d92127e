"""The docs site builds with --strict (every link and page resolves), and every hook is documented."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zofw import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the [docs] extra is not installed")
    pytest.importorskip("material", reason="the [docs] extra is not installed")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                           cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()


def test_every_hook_is_documented_with_its_signature():
    text = (ROOT / "docs" / "hooks.md").read_text()
    hooks = [name for name, value in vars(hookspecs).items()
             if callable(value) and hasattr(value, "zofw_spec")]
    assert hooks, "no hook specs found"
    for name in hooks:
        section = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        assert section, f"hook {name} has no section in docs/hooks.md"
        parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"def {name}({parameters})" in section.group(1), f"docs/hooks.md shows another signature for {name}"


def test_the_hook_check_fails_for_an_undocumented_hook(monkeypatch):
    def register_optimizers(register):  # a hook added without docs
        """Register optimizers."""

    register_optimizers.zofw_spec = {}
    monkeypatch.setattr(hookspecs, "register_optimizers", register_optimizers, raising=False)
    with pytest.raises(AssertionError, match="register_optimizers"):
        test_every_hook_is_documented_with_its_signature()
