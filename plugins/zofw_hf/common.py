"""What both Hugging Face adapters share: options, device/dtype choice, loading, padding, trainable subset."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Optional, Sequence, Union

import torch
from pydantic import Field

from zofw.batching import on_device
from zofw.errors import BadInput, RunFailed
from zofw.params import TrainableParams
from zofw.slots.base import Options
from zofw.slots.model import ModelAdapter
from zofw.slots.task import TaskKind
from zofw_hf import published, saving

if TYPE_CHECKING:  # transformers is imported lazily at load(), so that `zofw list` stays fast
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Side = Literal["left", "right"]
GRAPHS_BELOW = 1e9  # model.cuda_graphs = "auto": parameters below which the loss forwards are captured


class LoraOptions(Options):
    r: int = Field(8, ge=1)  # rank (MeZO, DP-ZO: 8)
    alpha: float = Field(16, gt=0)  # the update is scaled by alpha / r
    targets: Optional[list[str]] = None  # module names; None: peft's default for the architecture (q/v projections)


class PrefixOptions(Options):
    virtual_tokens: int = Field(5, ge=1)  # prefix length m: trained keys and values at every layer (MeZO: 5)
    projection: bool = False  # peft's reparametrisation through an MLP (Li & Liang); MeZO trains the prefix directly


class HFOptions(Options):
    path: str  # hub id or local checkpoint directory
    tokenizer: Optional[str] = None  # hub id or local tokenizer directory; default: path
    # auto: float16 on CUDA, float32 elsewhere (MeZO's choice); checkpoint: the dtype the checkpoint stores
    # (what transformers calls "auto"); fp32/fp16/bf16 are aliases
    dtype: Literal["auto", "checkpoint", "float32", "float16", "bfloat16", "fp32", "fp16", "bf16"] = "auto"
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")  # auto: CUDA when available; cuda:1, mps
    revision: Optional[str] = None  # hub revision (branch, tag or commit) of path and tokenizer; ignored for local paths
    trainable: str = "all"  # "all", "bias", "lora", "prefix" or a regular expression over parameter names
    lora: Optional[LoraOptions] = None  # with trainable = "lora" (defaults when absent)
    prefix: Optional[PrefixOptions] = None  # with trainable = "prefix" (defaults when absent)
    max_length: int = Field(1024, gt=1)  # tokens per input; the prompt is what gets truncated
    # random weights (speed and memory runs), built from path's config.json, or from the published numbers
    # when path names a published configuration: opt-125m … opt-66b, roberta-base, roberta-large (zofw_hf.published)
    random_init: bool = False
    # capture the loss forwards as CUDA graphs (zofw.cuda_graphs) on CUDA, for architectures whose forward
    # never reads back from the GPU (zofw_hf.masks lists them), so that the host stops being the bottleneck.
    # auto: below 1e9 parameters, where a forward is short enough for Python to fall behind the GPU
    # (RoBERTa-large: step 63 → 30 ms on an H100); larger models keep the GPU busy without graphs, and a
    # graph's pool would only add memory (docs/benchmarks.md)
    cuda_graphs: Union[bool, Literal["auto"]] = "auto"


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def resolve_dtype(choice: str, device: torch.device) -> torch.dtype | str:
    """A torch dtype, or "auto" (transformers' word for the checkpoint's own dtype)."""
    # Forward-only training keeps no optimizer state, so half precision on GPU is the MeZO default.
    if choice == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if choice == "checkpoint":
        return "auto"
    return getattr(torch, DTYPE_ALIASES.get(choice, choice))


def looks_local(name: str) -> bool:
    """A name that can only mean a directory on this machine, never a hub id."""
    return name.startswith(("/", ".", "~")) or Path(name).expanduser().exists()


def locate(name: str) -> str:
    """``name`` with ``~`` expanded where it is a local directory; hub ids pass through."""
    return str(Path(name).expanduser()) if looks_local(name) else name


def one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def pad(rows: Sequence[Sequence[int]], pad_id: int, side: Side, device: torch.device,
        shape: Optional[tuple[int, int]] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of ``rows`` padded on ``side``.

    Without ``shape``: (b, longest row), for public data (evaluation). With ``shape`` = (R, W): exactly
    that, the b rows first and R − b dummy rows after them, so the forward's shape never depends on which
    other examples share it. A dummy row attends to one pad token (a fully masked row would softmax over
    nothing); its outputs are discarded.
    """
    count, width = shape if shape is not None else (len(rows), max(len(row) for row in rows))
    if len(rows) > count or any(len(row) > width for row in rows):
        raise ValueError(f"{len(rows)} rows of up to {max(map(len, rows), default=0)} tokens do not fit {shape}")
    ids = torch.full((count, width), pad_id, dtype=torch.long)
    mask = torch.zeros((count, width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    mask[len(rows):, -1 if side == "left" else 0] = 1
    return on_device(ids, device), on_device(mask, device)


def chunks(count: int, size: int) -> list[range]:
    size = max(size, 1)
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


class HFAdapter(ModelAdapter):
    """Loading, checks and the trainable subset of a Hugging Face model; subclasses add the task logic."""

    Options = HFOptions
    auto_class: ClassVar[str]  # name of the transformers Auto class that loads the weights
    prefix_task: ClassVar[str] = "FEATURE_EXTRACTION"  # peft's task type for prefix tuning this kind of model
    kinds: ClassVar[tuple[TaskKind, ...]]  # task kinds the adapter can serve

    options: HFOptions

    def __init__(self, options: HFOptions) -> None:
        super().__init__(options)
        self._model: Optional[PreTrainedModel] = None
        self._tokenizer: Optional[PreTrainedTokenizerBase] = None
        self._prefix: Optional[Any] = None  # peft's wrapper holding the trained prefix (trainable = "prefix")
        self._trainable: Optional[TrainableParams] = None
        self._graphs: Optional[Any] = None  # zofw.cuda_graphs.GraphedForwards, on CUDA
        self.kind: TaskKind = self.kinds[0]
        self.device = resolve_device(options.device)
        self.pad_id = 0
        self.max_length = options.max_length

    # --- checks and loading -------------------------------------------------------------------

    def check(self) -> None:
        for key, name in (("path", self.options.path), ("tokenizer", self.options.tokenizer)):
            if name is not None and looks_local(name) and not Path(name).expanduser().is_dir():
                raise BadInput(f"model.{key}: no such directory: {name}")
        for key in ("lora", "prefix"):
            if getattr(self.options, key) is not None and self.options.trainable != key:
                raise BadInput(f"model.{key}: {key} settings are read only with model.trainable = \"{key}\" "
                               f"(it is '{self.options.trainable}')")
        short = None if looks_local(self.options.path) else published.short_name(self.options.path)
        if short is not None and "/" not in self.options.path and short not in published.LEGACY_HUB_IDS:
            if not self.options.random_init:
                raise BadInput(f"model.path: '{self.options.path}' is a published configuration's short name: it "
                               f"builds random weights with model.random_init = true; the pretrained weights are "
                               f"'{published.hub_id(short)}'")
            if self.options.tokenizer is None:
                raise BadInput(f"model.tokenizer: model.path '{self.options.path}' names a configuration, not a "
                               f"tokenizer: set model.tokenizer (e.g. '{published.hub_id(short)}' or a local folder)")
        if self.options.trainable not in ("all", "bias", "lora", "prefix"):
            try:
                re.compile(self.options.trainable)
            except re.error as error:
                raise BadInput(f"model.trainable: not a regular expression: {error}") from None

    def builds_offline(self) -> bool:
        """Whether ``path`` needs nothing from the hub: random weights from a published configuration
        written in zofw (``zofw_hf.published``). Read by ``zofw.provenance`` before it checks hub ids."""
        return (self.options.random_init and not looks_local(self.options.path)
                and published.short_name(self.options.path) is not None)

    def load(self, kind: TaskKind) -> None:
        if kind not in self.kinds:
            raise BadInput(f"model '{self.name}' cannot do {kind} tasks")
        self.kind = kind
        if self._model is not None:
            return
        # checked here, not in check(): a GPU recipe must still validate on a CPU-only machine
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BadInput("model.device: 'cuda' was asked for but no CUDA device is available")
        if self.device.type == "cuda" and (self.device.index or 0) >= torch.cuda.device_count():
            raise BadInput(f"model.device: '{self.options.device}' names a GPU this machine does not have "
                           f"({torch.cuda.device_count()} visible)")
        if self.device.type == "mps" and not torch.backends.mps.is_available():
            raise BadInput("model.device: 'mps' was asked for but this machine has no Apple GPU available")
        hub = {} if self.options.revision is None else {"revision": self.options.revision}
        import transformers

        tokenizer_name = self.options.tokenizer or self.options.path
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                locate(tokenizer_name), **({} if looks_local(tokenizer_name) else hub))
        except (OSError, ValueError) as error:
            raise BadInput(f"model.tokenizer: cannot load '{tokenizer_name}': {one_line(error)}") from None
        dtype = resolve_dtype(self.options.dtype, self.device)
        auto = getattr(transformers, self.auto_class)
        try:
            if self.options.random_init:
                short = None if looks_local(self.options.path) else published.short_name(self.options.path)
                config = (published.published_config(short) if short is not None
                          else transformers.AutoConfig.from_pretrained(locate(self.options.path)))
                with self.device:  # initialise on the target device: CPU init of billions of weights is slow
                    stored = getattr(config, "torch_dtype", None)  # "checkpoint" without a checkpoint: the config's
                    model = auto.from_config(config, dtype=dtype if isinstance(dtype, torch.dtype) else
                                             (getattr(torch, stored) if isinstance(stored, str) else stored or torch.float32))
            else:
                model = auto.from_pretrained(locate(self.options.path), dtype=dtype,
                                             **({} if looks_local(self.options.path) else hub))
        except (OSError, ValueError) as error:
            raise BadInput(f"model.path: cannot load '{self.options.path}': {one_line(error)}") from None
        rows = model.get_input_embeddings().num_embeddings
        # ids need not be contiguous (the fairseq vocabulary of OPT/RoBERTa has 50262 tokens up to id 50264)
        highest = max([len(tokenizer) - 1, *tokenizer.get_vocab().values()])
        if highest >= rows:  # a mismatched tokenizer would index past the embedding mid-run
            raise BadInput(f"model.tokenizer: '{tokenizer_name}' has token ids up to {highest} but the model's "
                           f"embedding has only {rows} rows")
        # Models without a pad token (GPT-2, LLaMA) pad with EOS: the attention mask hides it anyway.
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad_id is None:
            raise BadInput(f"model.tokenizer: '{tokenizer_name}' has neither a pad nor an EOS token")
        self.pad_id = pad_id
        self._tokenizer = tokenizer
        if self.options.trainable == "lora":
            model = self._with_lora(model)
        model.requires_grad_(False)  # zeroth-order training needs no autograd; a first-order estimator opts in
        self._model = model.eval().to(self.device)
        if self.options.trainable == "prefix":
            self._prefix = self._with_prefix(self._model)
        self.loaded()

    def _with_lora(self, model: PreTrainedModel) -> PreTrainedModel:
        """LoRA layers injected in place (peft): the model keeps its class and forward; only the new
        lora_A/lora_B weights are trainable, with B = 0 so that training starts from the base model."""
        from peft import LoraConfig, inject_adapter_in_model

        settings = self.options.lora or LoraOptions()
        self._lora_config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, target_modules=settings.targets,
                                       lora_dropout=0.0, bias="none")
        try:
            return inject_adapter_in_model(self._lora_config, model)
        except ValueError as error:  # e.g. no module matches the targets
            raise BadInput(f"model.lora: {one_line(error)}") from None

    def _with_prefix(self, model: PreTrainedModel) -> Any:
        """Prefix tuning (peft): trained keys and values prepended at every layer; the model's own weights
        stay as loaded. The wrapper is kept beside the model: forwards go through ``tuned`` or take
        ``prefix_inputs``."""
        from peft import PrefixTuningConfig, get_peft_model

        settings = self.options.prefix or PrefixOptions()
        config = PrefixTuningConfig(task_type=self.prefix_task, num_virtual_tokens=settings.virtual_tokens,
                                    prefix_projection=settings.projection,
                                    base_model_name_or_path=self.options.path)
        try:
            wrapped = get_peft_model(model, config)
        except (ValueError, TypeError, AttributeError) as error:  # an architecture peft cannot prefix-tune
            raise BadInput(f"model.prefix: {one_line(error)}") from None
        return wrapped.eval().requires_grad_(False).to(self.device)

    @property
    def tuned(self) -> Any:
        """What to call for a forward or ``generate``: the model, or peft's wrapper that adds the prefix."""
        return self._prefix if self._prefix is not None else self.model

    def prefix_inputs(self, mask: torch.Tensor) -> dict[str, Any]:
        """Attention mask (and the prefix's keys and values) for a direct call of the model's encoder."""
        if self._prefix is None:
            return {"attention_mask": mask}
        width = self._prefix.peft_config["default"].num_virtual_tokens
        ones = torch.ones(mask.shape[0], width, dtype=mask.dtype, device=mask.device)
        return {"attention_mask": torch.cat([ones, mask], dim=1),
                "past_key_values": self._prefix.get_prompt(batch_size=mask.shape[0])}

    def save_trained(self, directory: Path) -> bool:
        """The fine-tune, as its ecosystem loads it: a full checkpoint (``from_pretrained``), the trained
        subset beside the base model's id, or peft's adapter (see ``zofw_hf.saving``)."""
        return saving.save(self, directory)

    def restore_trained(self, directory: Path, kind: TaskKind) -> "HFAdapter":
        """An adapter loaded with the fine-tune that :meth:`save_trained` wrote to ``directory``."""
        return saving.restore(self, directory, kind)

    def loaded(self) -> None:
        """Hook for subclasses: check the architecture and cache token ids once weights are in place."""

    @property
    def model(self) -> PreTrainedModel:
        if self._model is None:
            raise RunFailed(f"model '{self.name}' was used before load()")
        return self._model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        if self._tokenizer is None:
            raise RunFailed(f"model '{self.name}' was used before load()")
        return self._tokenizer

    def trainable(self) -> TrainableParams:
        if self._prefix is not None:  # the prompt encoder lives in peft's wrapper, beside the model
            params = TrainableParams.select(self._prefix, r"^prompt_encoder\.")
            if not params.names:
                raise BadInput("model.prefix: peft's wrapper holds no prefix parameters")
            return params
        pattern = r"\.lora_[AB]\." if self.options.trainable == "lora" else self.options.trainable
        params = TrainableParams.select(self.model, pattern)
        if not params.names:
            raise BadInput(f"model.trainable: '{self.options.trainable}' selects no parameters")
        self._trainable = params  # whose just-in-time hooks a captured forward must replay
        return params

    def graphed(self, site: str, forward: Callable[..., torch.Tensor], static: tuple,
                **inputs: torch.Tensor) -> torch.Tensor:
        """``forward(**inputs)``, through a captured CUDA graph where the adapter uses them."""
        if self._graphs is None:
            return forward(**inputs)
        return self._graphs(site, forward, static, **inputs)

    def _start_graphs(self, prepared_mask: bool) -> None:
        """Graphs on CUDA for the sync-free architectures (called by the subclasses' ``loaded``)."""
        from zofw.cuda_graphs import GraphedForwards

        self._graphs = None
        wanted = self.options.cuda_graphs
        if wanted == "auto":
            wanted = sum(p.numel() for p in self.model.parameters()) < GRAPHS_BELOW
        if wanted and prepared_mask and self.device.type == "cuda" and self._prefix is None:
            self._graphs = GraphedForwards(self.model, lambda: getattr(self._trainable, "_just_in_time", None))

    # --- tokenization helpers -----------------------------------------------------------------

    def tokens(self, text: str) -> list[int]:
        """Ids of ``text`` without special tokens."""
        return self.tokenizer.encode(text, add_special_tokens=False)
