"""Forwards that see θ + αu while θ stays untouched: perturbed weights formed just in time, per block.

Why: the reference code perturbs θ in place (+λ, −2λ, +λ); in float16/bfloat16 that round trip does not
restore θ, and the drift is as large as a real update. Here θ is only read: when a block of the model
starts its forward, one kernel launch writes θ_block + αu_block into a scratch buffer and the block's
modules are pointed at views of it; when the block's forward ends they are pointed back at θ (memory: one
scratch buffer the size of a median block, a transformer layer, on top of inference).

Blocks are the largest modules (a transformer layer, an embedding) whose trainable tensors are one
contiguous range of the flat buffer and at most 1/16 of all trainable elements (at least the largest
tensor): one launch per layer, not one per tensor, so the host never falls behind the GPU. A module's
forward hook only fires if something calls that module, so every module that holds a trainable tensor
also has a fallback hook: if its tensor was not already swapped by an enclosing block (an adapter that
calls submodules directly, tied weights used in two places), it swaps that tensor alone. Either way the
element at global index i sees θ_i + α·u_i(seed), with the same u as every other pass. Once a block has
been seen to run inside a probe, the fallback hooks of the modules it covers are removed: a module with
hooks takes PyTorch's slow call path, which on RoBERTa-large cost 40% of a forward.

Embedding tables are never formed whole: a plain ``nn.Embedding`` returns, inside a probe, the rows of
θ + αu its tokens look up (``zofw.kernels.gather_rows``, bitwise the rows of the whole perturbed table),
and :meth:`JustInTime.rows` gives any caller the perturbed rows it needs (a masked-LM head scoring a few
vocabulary tokens of the table it is tied to).

The hooks are installed once per :class:`~zofw.params.TrainableParams` and do nothing outside
:meth:`JustInTime.probing` (evaluation forwards pay one attribute check per module).

Deferred updates (inside :meth:`JustInTime.deferring`, which the training loop and ``zofw bench`` use):
an update θ ← s·θ + Σ c_j·u_j is not applied when the estimator asks, but fused into the next probe's
pass over each block: one kernel reads θ once, writes the updated θ and, from the values just written,
θ + αu_next into the scratch buffer (bitwise what two passes give). So a step reads the weights twice,
not three times. Anything else that touches the weights first applies what is pending: a forward outside
a probe (the hooks settle it), an in-place pass (``zofw.directions.axpy_``), the end of the block, and
:meth:`settle` (call it before reading θ directly).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

import torch

from zofw import kernels

if TYPE_CHECKING:
    from zofw.params import TrainableParams

BLOCKS_PER_MODEL = 16  # a block holds at most 1/16 of the trainable elements (or the largest tensor)

Member = tuple[torch.nn.Module, str, int]  # (module holding it, attribute name, trainable tensor index)


@dataclass(frozen=True)
class Block:
    module: torch.nn.Module
    start: int  # global element range [start, stop) of its tensors: contiguous in the flat buffer
    stop: int
    members: tuple[Member, ...]
    indices: tuple[int, ...]  # its trainable tensors, consecutive (computed once, used every probe)


def live_terms(terms: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """The terms a pass draws: zero Python coefficients are skipped (``zofw.kernels`` does the same)."""
    return [(seed, c) for seed, c in terms if isinstance(c, torch.Tensor) or c != 0]


def gathered_embeddings(params: "TrainableParams") -> list[tuple[torch.nn.Module, int]]:
    """(module, tensor index) of the embedding tables whose looked-up rows a probe forms, never the table.

    Why: an embedding is the largest tensor of a small model (RoBERTa-large: 14% of it), yet a forward
    reads only the rows of its tokens. Forming the whole perturbed table needed a temporary buffer of its
    size, which is what set a step's peak memory. Plain ``nn.Embedding`` modules only (a subclass may
    compute its indices: OPT's positions), without ``max_norm`` (which rewrites the table)."""
    if params.flat is None or params.module is None:
        return []
    return [(module, index) for module, held in params.owners() for name, index in held
            if type(module) is torch.nn.Embedding and name == "weight" and module.max_norm is None]


def plan_blocks(params: "TrainableParams") -> list[Block]:
    """The blocks of ``params.module`` (none when the tensors do not share one flat buffer)."""
    if params.flat is None or params.module is None:
        return []
    gathered = gathered_embeddings(params)
    tables = {id(table) for table, _ in gathered}
    holders = {id(module): (module, held) for module, held in params.owners() if id(module) not in tables}
    sizes = [t.numel() for t in params.tensors]
    # the cap counts what blocks may swap: not the looked-up tables (a tied head swaps one alone, through
    # its fallback hook), which would otherwise let a small model's whole decoder pass for one block
    looked_up = {index for _, index in gathered}
    swapped = {index for _, held in holders.values() for _, index in held} - looked_up
    cap = max(sum(sizes[i] for i in swapped) // BLOCKS_PER_MODEL, max((sizes[i] for i in swapped), default=0))
    blocks: list[Block] = []

    def visit(module: torch.nn.Module) -> None:
        members = [(sub, name, index) for sub in module.modules() if id(sub) in holders
                   for name, index in holders[id(sub)][1]]
        if not members:
            return
        indices = sorted({index for _, _, index in members})
        start, stop = params.offsets[indices[0]], params.offsets[indices[-1]] + sizes[indices[-1]]
        contiguous = indices == list(range(indices[0], indices[-1] + 1))
        has_forward = type(module).forward is not torch.nn.Module.forward  # ModuleList is never called
        if contiguous and stop - start <= cap and has_forward:
            blocks.append(Block(module, start, stop, tuple(members), tuple(indices)))
            return
        for child in module.children():
            visit(child)

    visit(params.module)
    return blocks


@dataclass
class PendingUpdate:
    terms: Sequence[tuple[int, Any]]  # (seed, coefficient): coefficients may be device tensors
    shrink: float
    rounding_seed: Optional[int]
    settled: list[bool] = field(default_factory=list)  # per trainable tensor


class JustInTime:
    """The hooks of one TrainableParams; :meth:`probing` turns them on for the forwards inside it."""

    def __init__(self, params: "TrainableParams") -> None:
        self.params = params
        self.blocks = plan_blocks(params)
        self.probe: Optional[tuple[int, float]] = None  # (seed, alpha) while probing
        self._original: dict[tuple[int, str], torch.Tensor] = {}
        self._swapped_alone: set[tuple[int, str]] = set()
        self._fired: dict[int, Block] = {}  # blocks whose forward ran inside a probe, by id
        self._swapped_blocks: dict[int, list] = {}  # blocks whose scratch is installed now: (module, name) swapped
        self._dropped: set[int] = set()  # fired blocks whose covered fallback hooks are gone
        self._handles = []
        self._fallback: dict[int, list] = {}  # id(module) -> its fallback hooks' handles
        self.defer_updates = False
        self.pending: Optional[PendingUpdate] = None
        # One scratch buffer for every block, with each block's views of it made once: a probe then swaps a
        # block with dict assignments (host time matters: a small model's step waits on its Python). Blocks
        # run one after another on one stream, so a block's kernels are queued before the next block's pass
        # overwrites the buffer. Under autograd each block gets a fresh buffer instead (saved tensors).
        self._scratch: Optional[torch.Tensor] = None
        # while a CUDA graph captures a forward: the device buffers its launches read their values from
        self._graph_scalars: Optional[dict[str, tuple[torch.Tensor, torch.Tensor]]] = None
        self._graph_buffers: Optional[dict[str, tuple[torch.Tensor, torch.Tensor]]] = None
        sizes = sorted(block.stop - block.start for block in self.blocks)
        self._shared_size = sizes[len(sizes) // 2] if sizes else 0  # a median block: a transformer layer
        self._scratch_views: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}
        for block in self.blocks:
            self._handles.append(block.module.register_forward_pre_hook(
                lambda module, args, block=block: self._swap_block(block)))
            self._handles.append(block.module.register_forward_hook(
                lambda module, args, output, block=block: self._restore(block)))
        self.gathered = gathered_embeddings(params)
        for module, index in self.gathered:
            self._handles.append(module.register_forward_pre_hook(
                lambda module, args, index=index: self._before_lookup(index)))
            self._handles.append(module.register_forward_hook(
                lambda module, args, output, index=index: self._perturbed_lookup(module, index, args[0])))
        gathered_modules = {id(module) for module, _ in self.gathered}
        for module, held in params.owners():
            for name, _ in held:
                self._original[(id(module), name)] = module._parameters[name]
            if id(module) in gathered_modules:
                continue
            self._fallback[id(module)] = [
                module.register_forward_pre_hook(lambda module, args, held=held: self._swap_alone(module, held)),
                module.register_forward_hook(lambda module, args, output, held=held: self._restore_alone(module, held))]

    @contextmanager
    def probing(self, seed: int, alpha: float) -> Iterator[None]:
        if self.probe is not None:
            raise RuntimeError("perturbed() blocks do not nest")
        self.probe = (seed, alpha)
        try:
            yield
        finally:
            self.probe = None
            # a forward that raised may have left scratch in place: put back whatever is still swapped
            for block in [b for b in self.blocks if id(b) in self._swapped_blocks]:
                self._restore(block)
            for module, held in self.params.owners() if self._swapped_alone else ():
                for name, _ in held:
                    module._parameters[name] = self._original[(id(module), name)]
            self._swapped_alone.clear()
            self._drop_covered_fallbacks()
            self.settle()  # tensors no forward used

    def _drop_covered_fallbacks(self) -> None:
        """Remove the fallback hooks of modules inside blocks that fired (once per block)."""
        for key in [key for key in self._fired if key not in self._dropped]:
            for module, _, _ in self._fired[key].members:
                for handle in self._fallback.pop(id(module), []):
                    handle.remove()
            self._dropped.add(key)

    # --- deferred updates --------------------------------------------------------------------------

    @contextmanager
    def deferring(self) -> Iterator[None]:
        self.defer_updates = True
        try:
            yield
        finally:
            self.defer_updates = False
            self.settle()

    def can_defer(self, shrinks: Sequence[float]) -> bool:
        """Deferral needs one shrink factor for all tensors and blocks to fuse into."""
        return self.defer_updates and bool(self.blocks) and len(set(shrinks)) <= 1

    def defer(self, terms: Sequence[tuple[int, Any]], shrink: float, rounding_seed: Optional[int]) -> None:
        self.settle()  # at most one update pending
        self.pending = PendingUpdate(list(terms), shrink, rounding_seed, [False] * len(self.params.tensors))

    def settle(self) -> None:
        """Apply what is pending to every tensor it has not reached yet (one launch per contiguous run)."""
        pending, params = self.pending, self.params
        if pending is None:
            return
        index, count = 0, len(params.tensors)
        while index < count:
            if pending.settled[index]:
                index += 1
                continue
            last = index
            while last + 1 < count and not pending.settled[last + 1]:
                last += 1
            self._apply(index, last + 1)
            index = last + 1
        self.pending = None

    def _apply(self, first: int, stop: int, probe: Optional[tuple[torch.Tensor, int, float]] = None) -> None:
        """The pending update on tensors [first, stop) (contiguous in the flat buffer), optionally writing the
        probe's perturbed weights in the same pass."""
        pending, params = self.pending, self.params
        assert pending is not None and params.flat is not None
        begin = params.offsets[first]
        end = params.offsets[stop - 1] + params.tensors[stop - 1].numel()
        span = params.flat[begin:end]
        kernels.axpy_directions_(span, span, pending.shrink, pending.terms, begin, pending.rounding_seed, probe=probe,
                                 scalars=self._graph_scalars and self._graph_scalars["pending"])
        for index in range(first, stop):
            pending.settled[index] = True

    def _unsettled(self, indices: Sequence[int]) -> list[int]:
        return [] if self.pending is None else [i for i in indices if not self.pending.settled[i]]

    # --- CUDA graphs (zofw.cuda_graphs) -------------------------------------------------------------

    def graph_variant(self) -> Optional[tuple]:
        """What a forward does to the weights right now, as part of a captured graph's key; None when it
        must run eagerly (an update with more than 3 directions, which takes several passes)."""
        pending = self.pending
        if pending is None:
            return ("probe",) if self.probe is not None else ("plain",)
        live = live_terms(pending.terms)
        if len(live) > 3:
            return None
        if self.probe is None:
            return None  # a plain forward settles the pending update first: not worth a graph
        return ("pending", len(live), pending.rounding_seed is not None, tuple(pending.settled))

    @contextmanager
    def capturing(self) -> Iterator[dict]:
        """Launches inside read their per-step values from device buffers (filled by :meth:`load_graph_values`
        before each replay); yields a record of what the forward settled, for :meth:`replayed`."""
        params = self.params
        if self._graph_buffers is None:
            device = params.tensors[0].device
            self._graph_buffers = {kind: (torch.zeros(5, dtype=torch.int64, device=device),
                                          torch.zeros(5, dtype=torch.float32, device=device))
                                   for kind in ("probe", "pending")}
        record: dict = {}
        self._graph_scalars = self._graph_buffers
        try:
            yield record
        finally:
            self._graph_scalars = None
            record["settled"] = list(self.pending.settled) if self.pending is not None else None

    def load_graph_values(self) -> None:
        """Write this forward's seeds, coefficients and step sizes where a captured graph reads them."""
        if self.probe is None or self._graph_buffers is None:
            return
        from zofw.kernels.triton_axpy import _signed64

        seed, alpha = self.probe
        seeds, values = [_signed64(seed), 0, 0, 0, 0], [float(alpha), 0.0, 0.0, 1.0, 0.0]
        self._copy_values(self._graph_buffers["probe"], seeds, values, [])
        pending = self.pending
        if pending is not None:
            live = live_terms(pending.terms)
            seeds = [_signed64(s) for s, _ in live] + [0] * (3 - len(live))
            seeds += [_signed64(pending.rounding_seed or 0), _signed64(seed)]
            values = [0.0 if isinstance(c, torch.Tensor) else float(c) for _, c in live] + [0.0] * (3 - len(live))
            values += [float(pending.shrink), float(alpha)]
            tensors = [(j, c) for j, (_, c) in enumerate(live) if isinstance(c, torch.Tensor)]
            self._copy_values(self._graph_buffers["pending"], seeds, values, tensors)

    @staticmethod
    def _copy_values(buffers: tuple[torch.Tensor, torch.Tensor], seeds: list[int], values: list[float],
                     tensors: list[tuple[int, torch.Tensor]]) -> None:
        from zofw.batching import on_device

        device_seeds, device_values = buffers
        device_seeds.copy_(on_device(torch.tensor(seeds, dtype=torch.int64), device_seeds.device))
        device_values.copy_(on_device(torch.tensor(values, dtype=torch.float32), device_values.device))
        for index, coefficient in tensors:  # released on the GPU: copied there, never read back
            device_values[index].copy_(coefficient.reshape(()))

    def replayed(self, record: dict) -> None:
        """After a replay: the bookkeeping the captured forward's hooks did at capture time."""
        if record.get("settled") is not None and self.pending is not None:
            self.pending.settled = list(record["settled"])

    def remove(self) -> None:
        self._scratch, self._scratch_views = None, {}
        for handle in self._handles + [h for handles in self._fallback.values() for h in handles]:
            handle.remove()
        self._handles.clear()
        self._fallback.clear()

    # --- hooks -------------------------------------------------------------------------------------

    def _perturbed_copy(self, source: torch.Tensor, offset: int) -> torch.Tensor:
        assert self.probe is not None
        seed, alpha = self.probe
        scratch = torch.empty_like(source)
        kernels.axpy_directions_(scratch, source, 1.0, [(seed, alpha)], offset,
                                 scalars=self._graph_scalars and self._graph_scalars["probe"])
        return scratch

    def _block_scratch(self, block: Block) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Where ``block``'s perturbed weights go, and each member's view of it."""
        params = self.params
        assert params.flat is not None
        size = block.stop - block.start
        # autograd may keep these weights for a backward, and an outsized block (an embedding) would keep
        # its size reserved through the whole forward: those get a buffer of their own, freed after
        if torch.is_grad_enabled() or size > self._shared_size:
            scratch = torch.empty(size, dtype=params.flat.dtype, device=params.flat.device)
            return scratch, self._member_views(block, scratch)
        if id(block) not in self._scratch_views:
            if self._scratch is None:
                self._scratch = torch.empty(self._shared_size, dtype=params.flat.dtype, device=params.flat.device)
            span = self._scratch[:block.stop - block.start]
            self._scratch_views[id(block)] = span, self._member_views(block, span)
        return self._scratch_views[id(block)]

    def _member_views(self, block: Block, scratch: torch.Tensor) -> list[torch.Tensor]:
        params = self.params
        views = []
        for _, _, index in block.members:
            begin = params.offsets[index] - block.start
            tensor = params.tensors[index]
            views.append(scratch[begin:begin + tensor.numel()].view_as(tensor))
        return views

    def _swap_block(self, block: Block) -> None:
        if self.probe is None:
            self.settle()  # a forward outside a probe sees the updated weights
            return
        self._fired[id(block)] = block
        params = self.params
        assert params.flat is not None
        indices = block.indices
        scratch, views = self._block_scratch(block)
        unsettled = self._unsettled(indices)
        if unsettled and len(unsettled) == len(indices):  # update and perturb in one pass
            self._apply(indices[0], indices[-1] + 1, probe=(scratch, *self.probe))
        else:
            for index in unsettled:
                self._apply(index, index + 1)
            seed, alpha = self.probe
            kernels.axpy_directions_(scratch, params.flat[block.start:block.stop], 1.0, [(seed, alpha)], block.start,
                                     scalars=self._graph_scalars and self._graph_scalars["probe"])
        swapped = []
        for (module, name, _), view in zip(block.members, views):
            if module._parameters[name] is self._original[(id(module), name)]:  # else the caller put its own
                module._parameters[name] = view  # (a masked-LM head scoring a few vocabulary rows)
                swapped.append((module, name))
        self._swapped_blocks[id(block)] = swapped

    def _before_lookup(self, index: int) -> None:
        """An embedding lookup reads θ's rows: the pending update is applied to that table first."""
        if self.probe is None:
            self.settle()
        elif self._unsettled([index]):
            self._apply(index, index + 1)

    def _perturbed_lookup(self, module: torch.nn.Module, index: int, ids: torch.Tensor) -> Optional[torch.Tensor]:
        """Inside a probe, the lookup's output is replaced by the looked-up rows of θ + αu (the module's own
        output, a lookup of θ, is dropped)."""
        if self.probe is None:
            return None
        return self.rows(index, ids, module.embedding_dim)

    def rows(self, index: int, rows: torch.Tensor, width: int) -> torch.Tensor:
        """Rows of trainable tensor ``index`` seen as a (-1, width) matrix, as a forward sees them now:
        θ + αu inside a probe, with any pending update applied first."""
        params = self.params
        if self.probe is None:
            self.settle()
            return params.tensors[index].reshape(-1, width)[rows]
        if self._unsettled([index]):
            self._apply(index, index + 1)
        seed, alpha = self.probe
        scalars = self._graph_scalars and self._graph_scalars["probe"]
        tensor = params.tensors[index].reshape(-1)
        if width % 8 and tensor.is_cuda:  # the kernel takes rows of whole counters; a vector is small
            return self._perturbed_copy(tensor, params.offsets[index]).reshape(-1, width)[rows]
        return kernels.gather_rows(tensor, rows, width, params.offsets[index], seed, alpha, scalars=scalars)

    def _restore(self, block: Block) -> None:
        swapped = self._swapped_blocks.pop(id(block), None)
        for module, name in swapped or ():  # None: not swapped (a forward outside a probe)
            module._parameters[name] = self._original[(id(module), name)]

    def _swap_alone(self, module: torch.nn.Module, held) -> None:
        if self.probe is None:
            self.settle()
            return
        params = self.params
        for name, index in held:
            key = (id(module), name)
            if module._parameters[name] is not self._original[key]:
                continue  # an enclosing block already swapped it
            tensor = params.tensors[index]
            if self._unsettled([index]):
                scratch = torch.empty(tensor.numel(), dtype=tensor.dtype, device=tensor.device)
                self._apply(index, index + 1, probe=(scratch, *self.probe))
            else:
                scratch = self._perturbed_copy(tensor.reshape(-1), params.offsets[index])
            module._parameters[name] = scratch.view_as(tensor)
            self._swapped_alone.add(key)

    def _restore_alone(self, module: torch.nn.Module, held) -> None:
        if self.probe is None:
            return
        for name, _ in held:
            key = (id(module), name)
            if key in self._swapped_alone:
                module._parameters[name] = self._original[key]
                self._swapped_alone.discard(key)
