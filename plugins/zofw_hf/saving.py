"""A Hugging Face adapter's fine-tune on disk, and back.

What :meth:`HFAdapter.save_trained` writes into its directory depends on what was trained:

- ``trainable = "all"`` (or any random-init run, whose base weights cannot be had again): a standard
  checkpoint, model and tokenizer, that ``AutoModelFor….from_pretrained(directory)`` and
  ``AutoTokenizer.from_pretrained(directory)`` load;
- ``"bias"`` or a regular expression: only the trained subset, ``trainable.safetensors`` (tensors by
  parameter name), next to the base model it applies to (named in the marker file);
- ``"lora"`` / ``"prefix"``: peft's adapter files (``PeftModel.from_pretrained(base, directory)``).

Each also holds ``zofw_fine_tune.json``: the format, the adapter, the base model and tokenizer, the
trainable subset, so that :func:`restore` (``zofw eval``) can rebuild the fine-tuned model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

from zofw.errors import BadInput

if TYPE_CHECKING:
    from zofw_hf.common import HFAdapter

MARKER = "zofw_fine_tune.json"
SUBSET_FILE = "trainable.safetensors"
PEFT_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # PeftModel wraps the base model as base_model.model


def fine_tune_format(adapter: HFAdapter) -> str:
    trainable = adapter.options.trainable
    if trainable in ("lora", "prefix"):
        return trainable
    return "full" if trainable == "all" or adapter.options.random_init else "subset"


def _distinct_copies(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as CPU copies that share storage exactly where the model's parameters are tied.

    Training moves the trainable tensors into views of one flat buffer (``TrainableParams``); saved as
    they are, every one of them would look tied to every other (one storage). Copies made once per
    distinct tensor keep real ties (one Parameter under two names) and nothing else."""
    copies: dict[tuple[int, tuple[int, ...], tuple[int, ...]], torch.Tensor] = {}
    state = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()))
        if key not in copies:
            copies[key] = tensor.detach().to("cpu", copy=True).contiguous()
        state[name] = copies[key]
    return state


def save(adapter: HFAdapter, directory: Path) -> bool:
    """Write the fine-tune of ``adapter`` into ``directory`` (see the module's docstring)."""
    from safetensors.torch import save_file

    kind = fine_tune_format(adapter)
    options = adapter.options
    marker: dict[str, Any] = {"format": kind, "model": adapter.name, "base": options.path,
                              "tokenizer": options.tokenizer, "random_init": options.random_init,
                              "trainable": options.trainable}
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "prefix":
        adapter._prefix.save_pretrained(str(directory))
    elif kind == "lora":
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(adapter.model)
        save_file({f"{PEFT_PREFIX}{k}": v.detach().contiguous().cpu() for k, v in state.items()},
                  str(directory / PEFT_FILE))
        adapter._lora_config.base_model_name_or_path = options.path
        adapter._lora_config.save_pretrained(str(directory))
    elif kind == "full":
        adapter.model.save_pretrained(str(directory), state_dict=_distinct_copies(adapter.model))
        adapter.tokenizer.save_pretrained(str(directory))
    else:
        params = adapter.trainable()
        params.settle()
        save_file({name: tensor.detach().to("cpu", copy=True).contiguous()
                   for name, tensor in zip(params.names, params.tensors)}, str(directory / SUBSET_FILE))
        marker["parameters"] = params.names
    (directory / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return True


def read_marker(directory: Path) -> Optional[dict[str, Any]]:
    """The marker of a fine-tune saved by :func:`save`, or None where there is none."""
    path = directory / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BadInput(f"{path}: unreadable: {error}") from None
    if not isinstance(marker, dict) or marker.get("format") not in ("full", "subset", "lora", "prefix"):
        raise BadInput(f"{path}: not a zofw fine-tune marker (format full, subset, lora or prefix)")
    return marker


def restore(adapter: HFAdapter, directory: Path, kind: str) -> HFAdapter:
    """The adapter with the fine-tune in ``directory`` loaded: a new one reading the saved checkpoint
    (full), or ``adapter`` loaded from its base with the saved subset or peft adapter applied."""
    from safetensors.torch import load_file

    marker = read_marker(directory)
    if marker is None:
        raise BadInput(f"{directory}: no {MARKER}; not a fine-tune saved by zofw")
    if marker.get("model") != adapter.name:
        raise BadInput(f"{directory}: saved by model adapter '{marker.get('model')}', not '{adapter.name}'")
    form = marker["format"]
    if form == "full":
        options = adapter.options.model_copy(update={"path": str(directory), "tokenizer": str(directory),
                                                     "random_init": False, "trainable": "all", "lora": None,
                                                     "prefix": None})
        restored = type(adapter)(options)
        restored.load(kind)
        return restored
    if form != fine_tune_format(adapter):
        raise BadInput(f"{directory}: a {form} fine-tune, but the recipe trains '{adapter.options.trainable}'")
    adapter.load(kind)
    if form == "subset":
        saved = load_file(str(directory / SUBSET_FILE))
        params = adapter.trainable()
        if sorted(saved) != sorted(params.names):
            raise BadInput(f"{directory / SUBSET_FILE}: its {len(saved)} tensors are not the {len(params.names)} "
                           f"trainable parameters of {adapter.options.path}")
        params.settle()
        with torch.no_grad():
            for name, tensor in zip(params.names, params.tensors):
                tensor.copy_(saved[name])
        return adapter
    from peft import set_peft_model_state_dict

    state = load_file(str(directory / PEFT_FILE))
    if form == "lora":
        target = adapter.model
        state = {k[len(PEFT_PREFIX):] if k.startswith(PEFT_PREFIX) else k: v for k, v in state.items()}
    else:
        target = adapter._prefix
    result = set_peft_model_state_dict(target, state)
    # prompt learning loads "prompt_embeddings" into the prompt encoder itself, and lists it as unexpected
    unexpected = [k for k in getattr(result, "unexpected_keys", []) or [] if k != "prompt_embeddings"]
    if unexpected:
        raise BadInput(f"{directory / PEFT_FILE}: weights this model has no place for: {unexpected[0]}")
    return adapter
