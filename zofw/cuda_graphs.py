"""CUDA graphs for the forwards of a step: the host issues one replay instead of a thousand kernels.

Why: a model whose forward is short on the GPU (RoBERTa-large at 64×128: 12 ms of kernels) spends longer
in Python issuing them (15–17 ms on the H100 hosts measured), and a probe adds its own host work per
block: the GPU waits. A captured forward costs the host a few copies and one launch.

A forward is captured the second time its key is seen (the first runs eagerly, so that cuBLAS, Triton
and the caching allocator are initialised outside the capture) and replayed from then on. The key holds
everything that decides which kernels run and on which memory: the call site and its static arguments,
the shapes and dtypes of the inputs, the addresses of the model's parameters and buffers and of the
just-in-time scratch (storage replaced by ``p.data = …`` makes a new key), and what the forward does to the weights (``JustInTime.graph_variant``:
a plain forward, a probe, or a probe that also applies the pending update). Per-step values (seeds,
step sizes, the released coefficients) are read by the kernels from device buffers that are refilled
before each replay, and the inputs are copied into the graph's own. All graphs of a model share one
memory pool: they never run at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from zofw import kernels

Forward = Callable[..., torch.Tensor]


@dataclass
class Captured:
    graph: Any  # torch.cuda.CUDAGraph
    inputs: dict[str, torch.Tensor]
    output: torch.Tensor
    record: dict  # what the just-in-time hooks did at capture (replayed by JustInTime.replayed)
    just_in_time: Any  # kept alive: its id is part of the key
    passed: int  # weight elements its kernels read per replay


class GraphedForwards:
    """Runs ``forward(**inputs)`` through captured CUDA graphs where it can, eagerly elsewhere."""

    MAX_KEYS = 512  # distinct keys remembered (parameters that move every step never get a graph)

    def __init__(self, model: torch.nn.Module, just_in_time: Callable[[], Any]) -> None:
        self.model = model
        self.just_in_time = just_in_time  # the model's JustInTime, or None (no trainable layout yet)
        self.graphs: dict[tuple, Captured] = {}
        self.seen: dict[tuple, int] = {}
        self.pool: Optional[Any] = None
        self.replays = 0  # tests and zofw bench read these
        self.captures = 0

    def __call__(self, site: str, forward: Forward, static: tuple, **inputs: torch.Tensor) -> torch.Tensor:
        jit = self.just_in_time()
        variant = jit.graph_variant() if jit is not None else ("plain",)
        if variant is None or torch.is_grad_enabled() or torch.cuda.is_current_stream_capturing():
            return forward(**inputs)
        key = (site, static, variant, tuple((name, tuple(t.shape), t.dtype) for name, t in inputs.items()),
               self._memory(jit))
        captured = self.graphs.get(key)
        if captured is None:
            if len(self.seen) >= self.MAX_KEYS:
                self.seen.clear()
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] < 2:
                return forward(**inputs)
            captured = self._capture(forward, inputs, jit)
            self.graphs[key] = captured
        for name, tensor in inputs.items():
            captured.inputs[name].copy_(tensor)
        if jit is not None:
            jit.load_graph_values()
        captured.graph.replay()
        kernels._passed[0] += captured.passed  # the replay's passes over the weights (zofw bench counts them)
        self.replays += 1
        if jit is not None:
            jit.replayed(captured.record)
        return captured.output.clone()  # the next replay of this graph overwrites its output

    def _memory(self, jit: Any) -> tuple:
        """Every address a captured forward reads or writes besides its own inputs and pool: the model's
        parameters and buffers, and the just-in-time hooks' scratch (a new JustInTime has a new one)."""
        scratch = getattr(jit, "_scratch", None)
        return (tuple(p.data_ptr() for p in self.model.parameters()), tuple(b.data_ptr() for b in self.model.buffers()),
                id(jit), scratch.data_ptr() if scratch is not None else 0)

    def _capture(self, forward: Forward, inputs: dict[str, torch.Tensor], jit: Any) -> Captured:
        static = {name: tensor.clone() for name, tensor in inputs.items()}
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        record: dict = {}
        passed = kernels.elements_passed()
        if jit is not None:
            with jit.capturing() as record, torch.cuda.graph(graph, pool=self.pool):
                output = forward(**static)
        else:
            with torch.cuda.graph(graph, pool=self.pool):
                output = forward(**static)
        self.captures += 1
        passed, kernels._passed[0] = kernels.elements_passed() - passed, passed  # captured, not run: counted at replay
        return Captured(graph, static, output, record, jit, passed)
