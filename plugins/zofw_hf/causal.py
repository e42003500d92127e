"""Causal LM adapter (OPT, LLaMA, GPT-2, …): teacher-forced loss on the answer, MeZO-style evaluation."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field

from zofw.batching import on_device
from zofw.errors import BadInput
from zofw.slots.task import Example, Prediction, TaskKind
from zofw_hf import masks
from zofw_hf.common import HFAdapter, HFOptions, chunks, pad


class CausalLMOptions(HFOptions):
    max_new_tokens: int = Field(50, ge=1)  # greedy decoding budget of generation tasks (MeZO: 50)


@dataclass(frozen=True)
class CausalItem:
    """One encoded example: its prompt (BOS kept, truncated on the left), the scored target, all choices."""

    prompt: tuple[int, ...]
    target: tuple[int, ...]  # answers[0] (generation) or the gold choice (classification)
    choices: tuple[tuple[int, ...], ...] = ()  # every choice's ids (classification)


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens, so a left-padded row sees the positions it sees alone."""
    return (mask.cumsum(1) - 1).clamp_min(0)


class CausalLM(HFAdapter):
    """Hugging Face causal LM (OPT, LLaMA, GPT-2, …): loss on answer tokens, log-likelihood classification, greedy generation."""

    name = "causal_lm"
    Options = CausalLMOptions
    auto_class = "AutoModelForCausalLM"
    prefix_task = "CAUSAL_LM"
    kinds = ("classification", "generation")

    options: CausalLMOptions

    def check(self) -> None:
        super().check()
        if self.options.max_new_tokens >= self.options.max_length:
            raise BadInput(f"model.max_new_tokens: {self.options.max_new_tokens} leaves no room for a prompt "
                           f"within model.max_length={self.options.max_length}")

    def loaded(self) -> None:
        from transformers import GenerationConfig

        forward = inspect.signature(self.model.forward).parameters
        # transformers ≥ 4.50 calls it logits_to_keep, 4.45–4.49 num_logits_to_keep; else full logits are sliced
        self._keep_arg: Optional[str] = next((n for n in ("logits_to_keep", "num_logits_to_keep") if n in forward),
                                             None)
        # Positions that skip left padding are passed where the forward takes them (LLaMA, GPT-2, OPT, …);
        # ALiBi models (BLOOM, MPT) have none and derive their biases from the attention mask.
        self._positions = "position_ids" in forward
        # a mask built on the device, never inspected by transformers (see zofw_hf.masks); positions are
        # then passed too, since they can no longer be derived from the mask
        self._prepared_mask = self._positions and self._prefix is None and masks.takes_prepared(self.model, True)
        self._start_graphs(self._prepared_mask)
        self._special = set(self.tokenizer.all_special_ids)
        # Stop at a newline (MeZO): "\n" may also come merged as "\n\n"; the text is cut at "\n" anyway.
        # A tokenizer may drop whitespace altogether (word-level vocabularies): then EOS alone stops.
        newlines = [self.tokens(text) for text in ("\n", "\n\n")]
        stops = {self.tokenizer.eos_token_id} | {ids[-1] for ids in newlines if ids}
        # A fresh config, so that sampling settings shipped with a checkpoint never leak into greedy decoding.
        self._generation = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=self.options.max_new_tokens,
                                            eos_token_id=sorted(s for s in stops if s is not None),
                                            pad_token_id=self.pad_id)

    # --- encoding ---------------------------------------------------------------------------------

    def _prompt(self, example: Example, reserve: int, index: int) -> tuple[int, ...]:
        """Prompt ids with room for ``reserve`` answer tokens: leading special tokens stay, the text loses its start."""
        ids = self.tokenizer(example.prompt).input_ids  # adds BOS where the model expects one (OPT's </s>)
        lead = 0
        while lead < len(ids) and ids[lead] in self._special:
            lead += 1
        room = self.options.max_length - reserve - lead
        if room < 0:
            raise BadInput(f"example {index}: its answer has {reserve} tokens, more than "
                           f"model.max_length={self.options.max_length} leaves room for")
        body = ids[lead:]
        kept = ids[:lead] + body[max(len(body) - room, 0):]
        if not kept:  # the first answer token needs a position to be predicted from
            raise BadInput(f"example {index}: empty prompt, and the tokenizer adds no BOS token")
        return tuple(kept)

    def _answer(self, text: str, index: int) -> tuple[int, ...]:
        ids = tuple(self.tokens(text))
        if not ids:
            raise BadInput(f"example {index}: empty answer or choice")
        return ids

    def _classification_item(self, example: Example, index: int, labelled: bool) -> CausalItem:
        if not example.choices:
            raise BadInput(f"example {index}: a classification example has no choices")
        choices = tuple(self._answer(choice, index) for choice in example.choices)
        if labelled and not 0 <= example.label < len(choices):
            raise BadInput(f"example {index}: label {example.label} is not an index of its {len(choices)} choices")
        # One prompt for every choice (truncated for the longest), so the choices are scored on equal terms.
        prompt = self._prompt(example, max(map(len, choices)), index)
        return CausalItem(prompt, choices[example.label] if labelled else (), choices)

    def encode(self, examples: Sequence[Example]) -> list[CausalItem]:
        if self.kind == "classification":
            return [self._classification_item(example, i, labelled=True) for i, example in enumerate(examples)]
        items = []
        for i, example in enumerate(examples):
            if not example.answers:
                raise BadInput(f"example {i}: a generation example has no answer")
            target = self._answer(example.answers[0], i)
            items.append(CausalItem(self._prompt(example, len(target), i), target))
        return items

    # --- losses -----------------------------------------------------------------------------------

    def _mean_nll(self, rows: Sequence[Sequence[int]], lengths: Sequence[int],
                  shape: Optional[tuple[int, int, int]] = None) -> torch.Tensor:
        """Mean NLL (b,) of the last ``lengths[i]`` tokens of each row given what precedes them.

        ``shape`` = (rows, width, keep) fixes the forward's shape and how many positions get logits;
        without it (public evaluation data) both follow the longest row and target.
        """
        ids, mask = pad(rows, self.pad_id, "left", self.device, shape[:2] if shape else None)  # targets end rows
        # logits only where they predict a target: the vocab projection is the hog
        keep = shape[2] if shape else max(lengths) + 1
        counts = on_device(torch.tensor(list(lengths) + [1] * (len(ids) - len(lengths))), self.device)
        return self.graphed("mean_nll", lambda **inputs: self._nll(keep=keep, **inputs), (keep,),
                            ids=ids, mask=mask, counts=counts)

    def _nll(self, ids: torch.Tensor, mask: torch.Tensor, counts: torch.Tensor, keep: int) -> torch.Tensor:
        """The device part of :meth:`_mean_nll` (what a CUDA graph captures)."""
        extra = {self._keep_arg: keep} if self._keep_arg else {}
        # use_cache=False: a loss needs no key/value cache, and building one costs 10% of an OPT forward
        if self._positions:
            extra["position_ids"] = positions(mask)
        attention = masks.attention_mask(self.model, mask, causal=True) if self._prepared_mask else mask
        logits = self.tuned(input_ids=ids, attention_mask=attention, use_cache=False, **extra).logits
        logits = logits[:, -keep:-1].float()  # position p predicts token p + 1
        # rows of the vocabulary, not (b, V, keep − 1): the class-in-the-middle layout takes CUDA's "spatial"
        # softmax, 1.2 ms of an OPT-2.7B forward for 48 rows (H100 profile), against microseconds here
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1 - keep:].reshape(-1),
                              reduction="none").view(len(ids), keep - 1)
        inside = torch.arange(keep - 1, device=ids.device) >= (keep - 1 - counts)[:, None]
        return (nll * inside).sum(1) / counts

    def sizes(self, item: CausalItem) -> tuple[int, int]:
        # the row's tokens, and the positions that need logits (the target's, plus the one before it)
        return len(item.prompt) + len(item.target), len(item.target) + 1

    def losses(self, batch: Sequence[CausalItem], shape: tuple[int, ...]) -> torch.Tensor:
        if not batch:
            return torch.zeros(0, device=self.device)
        rows, width, keep = shape
        with torch.inference_mode(not torch.is_grad_enabled()):  # a first-order estimator asks for autograd
            return self._mean_nll([item.prompt + item.target for item in batch], [len(item.target) for item in batch],
                                  (rows, width, min(keep, width)))[:len(batch)]

    # --- evaluation -------------------------------------------------------------------------------

    def predict(self, examples: Sequence[Example], kind: TaskKind, batch_size: int) -> list[Prediction]:
        with torch.inference_mode():
            if kind == "classification":
                return list(self._classify(examples, batch_size))
            return list(self._generate(examples, batch_size))

    def _classify(self, examples: Sequence[Example], batch_size: int) -> list[int]:
        """Argmax of the length-normalised log-likelihood of each choice (MeZO/DPZero for OPT)."""
        items = [self._classification_item(example, i, labelled=False) for i, example in enumerate(examples)]
        chosen: list[int] = []
        for span in chunks(len(items), batch_size):
            pairs = [(items[i].prompt, choice) for i in span for choice in items[i].choices]
            nll = self._mean_nll([p + c for p, c in pairs], [len(c) for _, c in pairs]).tolist()
            for i in span:
                scores, nll = nll[:len(items[i].choices)], nll[len(items[i].choices):]
                chosen.append(min(range(len(scores)), key=scores.__getitem__))  # lowest NLL, first on ties
        return chosen

    def _generate(self, examples: Sequence[Example], batch_size: int) -> list[str]:
        """Greedy continuation up to the first newline, at most max_new_tokens tokens."""
        texts: list[str] = []
        for span in chunks(len(examples), batch_size):
            prompts = [self._prompt(examples[i], self.options.max_new_tokens, i) for i in span]
            ids, mask = pad(prompts, self.pad_id, "left", self.device)
            out = self.tuned.generate(input_ids=ids, attention_mask=mask, generation_config=self._generation)
            decoded = self.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
            texts.extend(text.split("\n", 1)[0].strip() for text in decoded)
        return texts
