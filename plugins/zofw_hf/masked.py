"""Masked LM adapter (RoBERTa, BERT) with LM-BFF prompts: the label word fills the mask.

Each choice is represented by the FIRST token of ``tokenizer.encode(choice, add_special_tokens=False)``:
LM-BFF's label words (" great", " terrible", " Yes", …) are one token each, so this is exact for them; a
longer word is scored by its first token, and two choices that share their first token are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field

from zofw.batching import on_device
from zofw.errors import BadInput, RunFailed
from zofw.slots.task import Example, Prediction, TaskKind
from zofw_hf import masks
from zofw_hf.common import HFAdapter, HFOptions, chunks, pad


class MaskedLMOptions(HFOptions):
    max_length: int = Field(256, gt=2)  # LM-BFF: 128–256 tokens per input


@dataclass(frozen=True)
class MaskedItem:
    """One encoded example: input ids, where the mask sits, each choice's token id and the gold index."""

    ids: tuple[int, ...]
    mask_at: int
    choices: tuple[int, ...]
    label: int  # -1 when only predicting


class MaskedLM(HFAdapter):
    """Hugging Face masked LM (RoBERTa, BERT) with LM-BFF prompts: the answer word fills the mask."""

    name = "masked_lm"
    Options = MaskedLMOptions
    auto_class = "AutoModelForMaskedLM"
    kinds = ("classification",)

    options: MaskedLMOptions

    def loaded(self) -> None:
        if self.tokenizer.mask_token is None:
            raise BadInput(f"model.tokenizer: '{self.options.tokenizer or self.options.path}' has no mask token")
        # Vocabulary logits are needed at the mask positions only. Where the head is the one child beside
        # the encoder (RoBERTa: lm_head, BERT: cls, ALBERT: predictions, DeBERTa: cls) it is applied to
        # those positions alone. Otherwise (DistilBERT, ELECTRA, ModernBERT: several modules) the model's
        # own forward runs, and the output projection (the vocabulary-wide matmul) sees only those rows.
        prefix = self.model.base_model_prefix
        heads = [module for name, module in self.model.named_children() if name != prefix]
        self._head: Optional[torch.nn.Module] = heads[0] if len(heads) == 1 else None
        self._projection: Optional[torch.nn.Module] = None
        if self._head is None:
            self._projection = self.model.get_output_embeddings()
            if self._projection is None:
                raise BadInput(f"model.path: '{self.options.path}' ({type(self.model).__name__}) has no output "
                               "embedding to score the mask with; not a masked LM")
            if self._prefix is not None:
                raise BadInput(f"model.prefix: {type(self.model).__name__}'s head is not one module; prefix tuning "
                               "of masked_lm needs one (RoBERTa, BERT, ALBERT, DeBERTa)")
        self._special = set(self.tokenizer.all_special_ids)
        self._prepared_mask = self._prefix is None and masks.takes_prepared(self.model, False)  # zofw_hf.masks
        self._start_graphs(self._prepared_mask)

    # --- encoding ---------------------------------------------------------------------------------

    def _inputs(self, example: Example, index: int) -> tuple[list[int], int]:
        """Ids of prompt + mask + suffix within max_length: the prompt loses its start, then the suffix its end."""
        tokenizer, limit = self.tokenizer, self.options.max_length
        ids = tokenizer(example.prompt + tokenizer.mask_token + example.suffix).input_ids
        if ids.count(tokenizer.mask_token_id) != 1:
            raise BadInput(f"example {index}: its prompt or suffix contains the mask token itself")
        at = ids.index(tokenizer.mask_token_id)
        lead = 1 if ids[0] in self._special and at > 0 else 0  # <s> / [CLS]
        trail = 1 if ids[-1] in self._special and at < len(ids) - 1 else 0  # </s> / [SEP]
        cut = min(max(len(ids) - limit, 0), at - lead)
        ids, at = ids[:lead] + ids[lead + cut:], at - cut
        excess = len(ids) - limit
        if excess > len(ids) - trail - at - 1:
            raise BadInput(f"example {index}: model.max_length={limit} is too short for its template")
        if excess > 0:
            ids = ids[:len(ids) - trail - excess] + ids[len(ids) - trail:]
        return ids, at

    def _item(self, example: Example, index: int, labelled: bool) -> MaskedItem:
        firsts = [self.tokens(choice)[:1] for choice in example.choices]
        if not firsts or not all(firsts):
            raise BadInput(f"example {index}: needs non-empty choices (masked_lm does classification only)")
        choices = tuple(first[0] for first in firsts)
        if len(set(choices)) < len(choices):
            raise BadInput(f"example {index}: two of its choices {example.choices} begin with the same token")
        if labelled and not 0 <= example.label < len(choices):
            raise BadInput(f"example {index}: label {example.label} is not an index of its {len(choices)} choices")
        ids, at = self._inputs(example, index)
        return MaskedItem(tuple(ids), at, choices, example.label if labelled else -1)

    def encode(self, examples: Sequence[Example]) -> list[MaskedItem]:
        return [self._item(example, i, labelled=True) for i, example in enumerate(examples)]

    # --- scoring ----------------------------------------------------------------------------------

    def _mask_logits(self, batch: Sequence[MaskedItem], shape: Optional[tuple[int, int]] = None) -> torch.Tensor:
        """Float32 vocabulary logits (R, V) at each row's mask position (``shape``: see ``pad``)."""
        return self._logits_at(*self._device_inputs(batch, shape))

    def _device_inputs(self, batch: Sequence[MaskedItem],
                       shape: Optional[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids, padding mask and mask positions of ``batch``, on the device."""
        ids, mask = pad([item.ids for item in batch], self.pad_id, "right", self.device, shape)
        at = on_device(torch.tensor([item.mask_at for item in batch] + [0] * (len(ids) - len(batch))), self.device)
        return ids, mask, at

    def _logits_at(self, ids: torch.Tensor, mask: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(len(ids), device=ids.device)
        inputs = self.prefix_inputs(mask)
        if self._prepared_mask:
            inputs["attention_mask"] = masks.attention_mask(self.model, mask, causal=False)
        if self._head is not None:
            hidden = self.model.base_model(input_ids=ids, **inputs)[0]  # (R, L, h)
            return self._head(hidden[rows, at]).float()  # the head sees the mask positions only
        assert self._projection is not None
        hook = self._projection.register_forward_pre_hook(lambda module, args: (args[0][rows, at], *args[1:]))
        try:
            logits = self.model(input_ids=ids, attention_mask=inputs["attention_mask"]).logits
        finally:
            hook.remove()
        if logits.shape != (len(ids), self._projection.weight.shape[0]):
            raise RunFailed(f"{type(self.model).__name__}: logits of shape {tuple(logits.shape)} after its output "
                            "projection; masked_lm cannot score its mask positions")
        return logits.float()

    def _choice_losses(self, ids: torch.Tensor, mask: torch.Tensor, at: torch.Tensor, columns: torch.Tensor,
                       labels: torch.Tensor) -> torch.Tensor:
        """−log softmax(choice logits)[label] for rows with equally many choices (what a CUDA graph captures)."""
        return -F.log_softmax(self._choice_scores(ids, mask, at, columns), dim=1).gather(1, labels).squeeze(1)

    def _choice_scores(self, ids: torch.Tensor, mask: torch.Tensor, at: torch.Tensor,
                       columns: torch.Tensor) -> torch.Tensor:
        """Float32 logits (b, K) of each row's choice tokens.

        Where the head ends in a linear output projection, that projection gets only the rows of the
        vocabulary being scored (K per row of the forward, through ``TrainableParams.current_rows``, so a probe forms
        θ + αu of those rows alone), and row i keeps its own K. Why: the projection is tied to the input
        embedding (RoBERTa: 51M of 355M weights), and forming the whole perturbed matrix for two choice
        tokens cost a pass over 14% of the model and a temporary of its size at every probe."""
        projection = self.model.get_output_embeddings()
        if self._head is None or self._trainable is None or type(projection) is not torch.nn.Linear:
            return self._logits_at(ids, mask, at)[:len(columns)].gather(1, columns)
        # the head's shape must not depend on how many real rows there are (batch independence): every
        # row of the forward, dummies too, brings K columns (a dummy repeats the first row's)
        count, choices = columns.shape
        padded = torch.cat([columns, columns[:1].expand(len(ids) - count, choices)]) if len(ids) > count else columns
        flat = padded.reshape(-1)
        weight = self._trainable.current_rows(projection.weight, flat)
        bias = None if projection.bias is None else self._trainable.current_rows(projection.bias, flat)
        saved = projection._parameters["weight"], projection._parameters["bias"]
        projection._parameters["weight"], projection._parameters["bias"] = weight, bias  # the JIT leaves these
        try:
            scores = self._logits_at(ids, mask, at)  # (R, R·K)
        finally:
            projection._parameters["weight"], projection._parameters["bias"] = saved
        rows = torch.arange(count, device=columns.device)
        return scores.view(len(ids), len(ids), choices)[rows, rows]  # row i scores its own K

    def _choice_logits(self, batch: Sequence[MaskedItem],
                       shape: Optional[tuple[int, int]] = None) -> list[torch.Tensor]:
        """Float32 logits of each item's choice tokens at its mask position."""
        vocab = self._mask_logits(batch, shape)
        # one gather with an index built on the host and copied without a wait (no per-item indexing)
        columns = on_device(torch.tensor([c for item in batch for c in item.choices]), self.device)
        rows = on_device(torch.tensor([i for i, item in enumerate(batch) for _ in item.choices]), self.device)
        return list(vocab[rows, columns].split([len(item.choices) for item in batch]))

    def sizes(self, item: MaskedItem) -> tuple[int]:
        return (len(item.ids),)

    def losses(self, batch: Sequence[MaskedItem], shape: tuple[int, ...]) -> torch.Tensor:
        if not batch:
            return torch.zeros(0, device=self.device)
        with torch.inference_mode(not torch.is_grad_enabled()):  # a first-order estimator asks for autograd
            # cross-entropy over the choices only (LM-BFF): −log softmax(choice logits)[label]
            if len({len(item.choices) for item in batch}) == 1:  # the usual case: one (b, K) tensor, four kernels
                ids, mask, at = self._device_inputs(batch, (shape[0], shape[1]))
                columns = on_device(torch.tensor([list(item.choices) for item in batch]), self.device)
                labels = on_device(torch.tensor([[item.label] for item in batch]), self.device)
                return self.graphed("choice_losses", self._choice_losses, (), ids=ids, mask=mask, at=at,
                                    columns=columns, labels=labels)
            scores = self._choice_logits(batch, (shape[0], shape[1]))
            return torch.stack([-F.log_softmax(s, dim=0)[item.label] for s, item in zip(scores, batch)])

    def predict(self, examples: Sequence[Example], kind: TaskKind, batch_size: int) -> list[Prediction]:
        if kind not in self.kinds:
            raise BadInput(f"model '{self.name}' cannot do {kind} tasks")
        items = [self._item(example, i, labelled=False) for i, example in enumerate(examples)]
        chosen: list[Prediction] = []
        with torch.inference_mode():
            for span in chunks(len(items), batch_size):
                chosen.extend(int(s.argmax()) for s in self._choice_logits([items[i] for i in span]))
        return chosen
