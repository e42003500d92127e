"""What the CLI shows a user about what exists: slots by any name they might type, components and their
options (from the pydantic schema and the comments beside each field), and the built-in recipes.

Nothing here imports torch: ``zofw describe`` and ``zofw recipes`` answer in well under a second.
"""

from __future__ import annotations

import difflib
import inspect
import re
import shutil
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from zofw.errors import BadInput

# every name a user may type for a slot: the registry's plural, the singular, and the recipe's table name
SLOT_ALIASES = {
    "estimator": "estimators", "clipper": "clippers", "schedule": "schedules", "accountant": "accountants",
    "model": "models", "task": "tasks", "noises": "noise", "privacy": "accountants",
}


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest option, or ""."""
    close = difflib.get_close_matches(word.lower(), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def slot_name(word: str, slots: Iterable[str]) -> str:
    """The registry slot ``word`` names (plural, singular or recipe table); BadInput with a hint otherwise."""
    slots = list(slots)
    key = word.strip().lower()
    if key in slots:
        return key
    if SLOT_ALIASES.get(key) in slots:
        return SLOT_ALIASES[key]
    raise BadInput(f"unknown slot '{word}'{did_you_mean(key, [*slots, *SLOT_ALIASES])} (slots: {', '.join(slots)})")


def find_component(name: str, registries: Mapping[str, Any], slot: Optional[str] = None) -> tuple[str, Any]:
    """(slot, entry) of the component ``name`` ("dpzero", or "noise.gaussian" / "noise gaussian" to pick a slot)."""
    if slot is None and "." in name:
        slot, name = name.split(".", 1)
    if slot is not None:
        slot = slot_name(slot, registries)
    chosen = {s: r for s, r in registries.items() if slot in (None, s)}
    hits = [(s, r.entries[name]) for s, r in chosen.items() if name in r.entries]
    if len(hits) > 1:
        both = " or ".join(f"'{s}.{name}'" for s, _ in hits)
        raise BadInput(f"'{name}' names components in {len(hits)} slots: say {both}")
    if hits:
        return hits[0]
    known = sorted({n for r in chosen.values() for n in r.entries})
    where = f"{slot} " if slot else ""
    raise BadInput(f"no {where}component '{name}'{did_you_mean(name, known)} (zofw list{' ' + slot if slot else ''} "
                   "shows them)")


# --- a component's options ---------------------------------------------------------------------------

FIELD_LINE = re.compile(r"^\s+(\w+)\s*:\s*[^#]*?(?:#\s*(.*))?$")


def field_comments(options_class: type) -> dict[str, str]:
    """The comment beside (or right above) each field in the source of ``options_class`` and its bases."""
    comments: dict[str, str] = {}
    for cls in reversed(options_class.__mro__):
        if cls.__module__.startswith("pydantic") or cls is object:
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("#").strip())
                continue
            match = FIELD_LINE.match(line) if not stripped.startswith(("def ", "@", "return", "\"", "'")) else None
            if match and match.group(1) in getattr(cls, "model_fields", {}):
                text = match.group(2) or " ".join(above)
                if text:
                    comments[match.group(1)] = text.strip()
            above = []
    return comments


def type_name(annotation: Any) -> str:
    """``Optional[int]``, ``Literal['causal', 'masked']``, ``list[str]``: short and readable."""
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    text = str(annotation)
    text = re.sub(r"\btyping\.", "", text)
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r"\b(?:[a-z_]+\.)+([A-Za-z_]\w*)", r"\1", text)
    return re.sub(r"Union\[(.*), NoneType\]", r"Optional[\1]", text)


BOUNDS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "min_length": "length ≥", "max_length": "length ≤"}


def constraint(metadata: Any) -> str:
    """"> 0", "length ≥ 2" for pydantic's annotated-types metadata; "" for what a user need not read."""
    for attribute, sign in BOUNDS.items():
        value = getattr(metadata, attribute, None)
        if value is not None:
            return f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}"
    return ""


def describe_options(component: type) -> list[dict[str, str]]:
    """One row per option of ``component``: name, type, default ("required" if none) and its doc comment."""
    options = component.Options
    comments = field_comments(options)
    rows = []
    for name, field in options.model_fields.items():
        if field.is_required():
            default = "required"
        elif field.default_factory is not None:
            default = repr(field.default_factory())
        else:
            default = repr(field.default)
        constraints = ", ".join(filter(None, map(constraint, field.metadata)))
        rows.append({"name": name, "type": type_name(field.annotation) + (f" ({constraints})" if constraints else ""),
                     "default": default, "doc": field.description or comments.get(name, "")})
    return rows


# --- built-in recipes --------------------------------------------------------------------------------

def recipes_dir() -> Path:
    return Path(str(resources.files("zofw") / "recipes"))


def builtin_recipes() -> dict[str, Path]:
    """Name (file stem) -> path of every recipe shipped in the wheel."""
    return {path.stem: path for path in sorted(recipes_dir().glob("*.toml"))}


def recipe_summary(path: Path) -> str:
    """The first comment line of a recipe, less its leading '#'."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def builtin_recipe(name: str) -> Path:
    """The built-in recipe ``name`` ("quickstart" or "quickstart.toml"); BadInput with a hint otherwise."""
    recipes = builtin_recipes()
    stem = name[:-5] if name.endswith(".toml") else name
    if stem in recipes:
        return recipes[stem]
    raise BadInput(f"no built-in recipe '{name}'{did_you_mean(stem, recipes)} (zofw recipes lists them)")


def resolve_recipe(recipe: Optional[Path]) -> Path:
    """A recipe argument as a path: an existing file as given, else a built-in recipe of that name, else the
    path as given (whose loading then says what is wrong with it); None: the built-in quickstart."""
    if recipe is None:
        return recipes_dir() / "quickstart.toml"
    text = str(recipe)
    looks_like_name = "/" not in text and "\\" not in text and not recipe.exists()
    if looks_like_name and (text in builtin_recipes() or text.removesuffix(".toml") in builtin_recipes()):
        return builtin_recipe(text)
    return recipe


def copy_recipe(name: str, dest: Path) -> Path:
    """Copy the built-in recipe ``name`` to ``dest`` (a file, or a folder to put NAME.toml in); never overwrite."""
    source = builtin_recipe(name)
    target = dest / source.name if dest.is_dir() else dest
    if target.exists():
        raise BadInput(f"{target} exists; it is not overwritten")
    if not target.absolute().parent.is_dir():
        raise BadInput(f"{dest}: no such directory: {target.absolute().parent}")
    try:
        shutil.copyfile(source, target)
    except OSError as error:
        raise BadInput(f"{target}: cannot write: {error.strerror or error}") from None
    return target
