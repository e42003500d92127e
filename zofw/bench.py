"""``zofw bench``: the cost of a step against two forwards and against the MeZO reference, in one process.

Everything is measured on the recipe's model, device and dtype, on one synthetic batch of ``batch``
examples of exactly ``length`` tokens (speed does not depend on the words), as medians of ``repeats``
timed runs after warm-up:
- ``fwd_ms``: per-example losses as the estimator uses them (fixed-shape forwards);
- ``step_ms``: the recipe's estimator, release (clip, noise, ledger) and update: a whole step;
- ``ref_step_ms``: the MeZO reference step, written here as the reference code does it: per-tensor
  ``torch.normal`` into a new tensor, ``p.data = p.data + scale·z·λ``, four passes, ``.item()``;
- peak memory of inference, of our step and of the reference step;
- the cost of batch independence: a batch of varied lengths in fixed-shape forwards vs one forward
  padded to its longest row.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from zofw.assemble import Components
from zofw.config import Recipe
from zofw import kernels
from zofw.directions import axpy_, stream_seed
from zofw.errors import BadInput
from zofw.rundir import atomic_write_text
from zofw.evaluate import per_example_losses
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import NoPrivacy, PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.estimator import UpdateContext
from zofw.slots.task import Example



def synthetic_examples(kind: str, count: int, length: int, offset: int = 0) -> list[Example]:
    """``count`` examples whose prompts are longer than ``length`` tokens (the adapter cuts them)."""
    words = " ".join(f"w{(offset + i) % 97}" for i in range(length * 2))
    if kind == "classification":
        return [Example(words, (" great",), (" great", " terrible"), 0, " It was") for _ in range(count)]
    return [Example(words, (" yes\n",)) for _ in range(count)]


class Timer:
    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def median_ms(self, work: Callable[[], Any], repeats: int, warmup: int) -> float:
        for _ in range(warmup):
            work()
        times = []
        for _ in range(repeats):
            self.sync()
            start = time.perf_counter()
            work()
            self.sync()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    def peak_gib(self, work: Callable[[], Any]) -> tuple[Optional[float], Optional[float]]:
        """(peak, reserved) device memory while ``work`` runs. peak: the most memory allocated
        (``max_memory_allocated``, as the MeZO numbers are measured) plus every segment that CUDA graphs'
        private pools hold, which a replay uses without allocating. reserved: the caching allocator's
        peak, after returning what was cached and unused (fragmentation included)."""
        if not self.cuda:
            return None, None
        self.sync()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        work()
        self.sync()
        graph_pools = sum(segment["total_size"] - segment["allocated_size"] for segment in torch.cuda.memory_snapshot()
                          if tuple(segment.get("segment_pool_id", (0, 0))) != (0, 0))
        reserved, allocated = torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated()
        return round((allocated + graph_pools) / 2**30, 3), round(max(reserved, allocated) / 2**30, 3)


def bench(recipe: Recipe, parts: Components, batch: int, length: int, repeats: int, warmup: int,
          profile: Optional[Path] = None) -> dict[str, Any]:
    model, estimator = parts.model, parts.estimator
    if batch < 1 or length < 8:
        raise BadInput("bench: --batch must be ≥ 1 and --length ≥ 8")
    model.load(parts.task.kind)
    params = model.trainable()
    estimator.prepare(params)
    device = params.tensors[0].device
    timer = Timer(device)
    items = model.encode(synthetic_examples(parts.task.kind, batch, length))
    rows = batch

    def losses() -> torch.Tensor:
        return per_example_losses(model, items, rows)

    if parts.clipper is not None and parts.noise is not None:
        release: PrivateRelease | NoPrivacy = PrivateRelease(
            parts.clipper, parts.noise, 1.0, 0.01, estimator, float(batch), SecretStream(), PrivacyLedger(1e-5))
    else:
        release = NoPrivacy(float(batch), estimator.directions())
    counter = iter(range(1, 1 << 62))

    def our_step() -> None:
        step = next(counter)
        seed = stream_seed(recipe.seed, step)
        with torch.inference_mode():
            measured = estimator.per_example(params, losses, seed)
            released = release.privatize(measured)
            estimator.update(params, seed, released.coefficients,
                             UpdateContext(step, recipe.train.lr, recipe.train.weight_decay, released.parameter_noise))

    smoothing = getattr(estimator.options, "smoothing", 1e-3)
    parameters: list[torch.Tensor] = []

    def reference_step() -> None:
        seed = next(counter)

        def perturb(scale: float) -> None:
            torch.manual_seed(seed)
            for tensor in parameters:
                z = torch.normal(0, 1, size=tensor.size(), device=tensor.device, dtype=tensor.dtype)
                tensor.data = tensor.data + scale * z * smoothing

        with torch.inference_mode():
            perturb(1)
            plus = losses().mean().item()
            perturb(-2)
            minus = losses().mean().item()
            perturb(1)
            gradient = (plus - minus) / (2 * smoothing)
            torch.manual_seed(seed)
            for tensor in parameters:
                z = torch.normal(0, 1, size=tensor.size(), device=tensor.device, dtype=tensor.dtype)
                tensor.data = tensor.data - recipe.train.lr * gradient * z

    def forward() -> None:
        with torch.inference_mode():
            losses()

    record: dict[str, Any] = {}
    record["fwd_ms"] = timer.median_ms(forward, repeats, warmup)
    record["inference_peak_gib"], record["inference_reserved_gib"] = timer.peak_gib(forward)
    if timer.cuda:  # the forward's own GPU time: fwd_ms minus it is host stalls inside the forward
        record["fwd_busy_ms"] = device_time(forward, timer)["gpu_busy_ms"]
    with params.deferred_updates():  # as the training loop runs: each update fused into the next probe
        record["step_ms"] = timer.median_ms(our_step, repeats, warmup)
        record["peak_gib"], record["peak_reserved_gib"] = timer.peak_gib(our_step)
        before = kernels.elements_passed()
        our_step()
        # reads of the weights per step (tied weights used twice in a forward count twice)
        record["passes_per_step"] = (kernels.elements_passed() - before) / params.numel()
        record |= device_time(our_step, timer, profile)
    record |= pass_costs(params, timer, repeats, warmup)
    hf = hf_forward(model, items)
    if hf is not None:
        record["hf_fwd_ms"] = timer.median_ms(hf, repeats, warmup)
    # the reference step last, on parameters with storage of their own (as the reference code has them)
    parameters = own_storage(params)
    record["ref_step_ms"] = timer.median_ms(reference_step, repeats, warmup)
    record["ref_peak_gib"], record["ref_reserved_gib"] = timer.peak_gib(reference_step)
    record |= batch_independence_cost(model, items, batch, timer, repeats, warmup)
    record["step_over_2fwd"] = record["step_ms"] / (2 * record["fwd_ms"])
    if "gpu_busy_ms" in record:
        record["gpu_idle_ms"] = record["step_ms"] - record["gpu_busy_ms"]
    record["speedup_vs_ref"] = record["ref_step_ms"] / record["step_ms"]
    graphs = getattr(model, "_graphs", None)
    record["cuda_graphs"] = None if graphs is None else {"captures": graphs.captures, "replays": graphs.replays}
    record["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    record["dtype"] = str(params.tensors[0].dtype).removeprefix("torch.")
    record["trainable_parameters"] = params.numel()
    record["batch"], record["length"] = batch, length
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in record.items()}


def device_time(step: Callable[[], Any], timer: Timer, profile: Optional[Path] = None, steps: int = 3) -> dict[str, float]:
    """Where a step's GPU time goes, from torch.profiler over ``steps`` steps: ``gpu_busy_ms`` (every
    kernel and copy, per step), of which ``pass_ms`` is the perturbation/update kernels; ``step_ms`` minus
    ``gpu_busy_ms`` is time the GPU waited for the host. With ``profile``, the table of the heaviest
    kernels is written there (host time per op where there is no GPU)."""
    from torch.profiler import ProfilerActivity, profile as profiler

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if timer.cuda else [])
    timer.sync()
    with profiler(activities=activities) as prof:
        for _ in range(steps):
            step()
        timer.sync()
    averages = prof.key_averages()
    if profile is not None:
        order = "self_cuda_time_total" if timer.cuda else "self_cpu_time_total"
        atomic_write_text(profile, averages.table(sort_by=order, row_limit=40, max_name_column_width=70))
    if not timer.cuda:
        return {}
    from torch.autograd import DeviceType

    # the device's own events (kernels, copies, fills): host ops also carry their kernels' time
    # ("Command Buffer Full" is CUPTI's mark for the host waiting on a full launch queue, not device work)
    kernels_run = [event for event in averages
                   if event.device_type == DeviceType.CUDA and "Command Buffer Full" not in event.key]
    busy = sum(event.self_device_time_total for event in kernels_run) / 1e3 / steps  # µs → ms per step
    passes = sum(event.self_device_time_total for event in kernels_run if "axpy" in event.key) / 1e3 / steps
    return {"gpu_busy_ms": busy, "pass_ms": passes}


def pass_costs(params: Any, timer: Timer, repeats: int, warmup: int) -> dict[str, float]:
    """One fused update pass over every trainable weight (one direction, stochastic rounding in half
    precision) against the floor of a pass: copying the same bytes (read once, written once)."""
    if params.flat is None:
        return {}
    flat, half = params.flat, params.flat.numel() // 2
    rounding = 1 if flat.dtype in (torch.float16, torch.bfloat16) else None

    def update_pass() -> None:
        axpy_(params, [(12345, 1e-12)], 1.0, rounding)  # moves θ by far less than its rounding: a real pass

    def copy_half() -> None:
        flat[:half].copy_(flat[half:2 * half])  # the bench's weights are random: overwriting half is harmless

    return {"update_pass_ms": timer.median_ms(update_pass, repeats, warmup),
            "copy_pass_ms": 2 * timer.median_ms(copy_half, repeats, warmup)}


def own_storage(params: Any) -> list[torch.Tensor]:
    """The trainable Parameters, each moved out of the shared flat buffer into storage of its own."""
    wanted = set(params.names)
    chosen = [p for name, p in params.module.named_parameters() if name in wanted] if params.module else params.tensors
    for parameter in chosen:
        parameter.data = parameter.data.clone()
    params.flat = None
    params.tensors = [p.data for p in chosen]
    params.forget_layout()  # storage moved: the module map and hooks are rebuilt if anyone asks
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return chosen


def hf_forward(model: Any, items: list) -> Optional[Callable[[], Any]]:
    """A plain Hugging Face forward with labels on the same tokens (causal LMs), for comparison."""
    hf_model = getattr(model, "model", None)
    if hf_model is None or not hasattr(items[0], "prompt"):
        return None
    ids = torch.tensor([list(item.prompt + item.target) for item in items], device=hf_model.device)

    def run() -> None:
        with torch.inference_mode():
            hf_model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids)

    return run


def batch_independence_cost(model: Any, items: list, batch: int, timer: Timer, repeats: int,
                            warmup: int) -> dict[str, float]:
    """Causal LMs: a batch of lengths spread over [length/4, length] in fixed public shapes vs one forward
    padded to its longest row (the shapes before batch independence)."""
    if not hasattr(items[0], "prompt"):
        return {}
    full = len(items[0].prompt)
    varied = [replace(item, prompt=item.prompt[:1] + item.prompt[1 + (3 * full // 4) * i // max(batch - 1, 1):])
              for i, item in enumerate(items)]
    widest = max(model.sizes(item)[0] for item in varied)
    shape = (batch, widest, max(model.sizes(item)[1] for item in varied))

    def fixed() -> None:
        with torch.inference_mode():
            per_example_losses(model, varied, batch)

    def padded() -> None:
        with torch.inference_mode():
            model.losses(varied, shape)

    return {"varied_fixed_shape_fwd_ms": timer.median_ms(fixed, repeats, warmup),
            "varied_padded_fwd_ms": timer.median_ms(padded, repeats, warmup)}
