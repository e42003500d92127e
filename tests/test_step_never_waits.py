"""On a GPU zofw's part of a training step never makes the host wait for the device (gpu_checks.sh runs it).

A synchronising call inside a step (a read-back, a copy from pageable memory) drains the GPU's queue, and
the host then issues the next kernels while the GPU idles. PyTorch's sync debug mode reports each one;
zofw's code must cause none: batching, probe, release (clip, noise, ledger), update. Nor may the Hugging
Face forward of OPT and RoBERTa: given a 2-D mask it synchronises while building the 4-D one
(``padding_mask.all()``, packed-sequence detection), so the adapters pass a mask prepared on the device
(``zofw_hf.masks``). Calls inside transformers are counted apart, so a failure says whose they are.
Capturing a CUDA graph synchronises once per new key (``zofw.cuda_graphs``); the steady state replays.
"""

from __future__ import annotations

import traceback
import warnings
from contextlib import contextmanager
from typing import Iterator

import pytest
import torch

from zofw.directions import stream_seed
from zofw.evaluate import per_example_losses
from zofw.privacy.ledger import PrivacyLedger
from zofw.privacy.release import PrivateRelease
from zofw.privacy.secure import SecretStream
from zofw.slots.estimator import UpdateContext
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM
from zofw_zo.clippers import ScalarClipper
from zofw_zo.estimators import DPZero, SmoothingOptions
from zofw_zo.noise import GaussianNoise

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@contextmanager
def synchronising_calls() -> Iterator[tuple[list[str], list[int]]]:
    """Where the code inside synchronised with the device: zofw's call sites, and a count of those inside
    the Hugging Face forward (reported apart)."""
    sites: list[str] = []
    inside_model = [0]

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        frames = traceback.extract_stack()[:-1]
        if any(frame.name == "_capture" and "cuda_graphs" in frame.filename for frame in frames):
            return  # capturing a CUDA graph synchronises once per new shape, by design; replays never do
        if any("/transformers/" in frame.filename for frame in frames):
            inside_model[0] += 1
            return
        ours = [frame for frame in frames if "/zofw" in frame.filename or "/tests/" in frame.filename]
        sites.append("".join(traceback.format_list(ours[-4:])))

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = record
            yield sites, inside_model
    finally:
        torch.cuda.set_sync_debug_mode("default")


def adapter_and_examples(kind: str, tiny_opt, tiny_roberta, shared_data):
    if kind == "causal":
        adapter = CausalLM(CausalLM.Options(path=str(tiny_opt), tokenizer=str(shared_data / "tokenizers" / "opt"),
                                            device="cuda", dtype="float16", max_length=64))
        adapter.load("generation")
        examples = [Example(f"Passage: {'word ' * (3 * i)}.\nQuestion: which?\nAnswer:", (f" {i}\n",))
                    for i in range(6)]
    else:
        adapter = MaskedLM(MaskedLM.Options(path=str(tiny_roberta),
                                            tokenizer=str(shared_data / "tokenizers" / "roberta"),
                                            device="cuda", dtype="float16", max_length=64))
        adapter.load("classification")
        examples = [Example(f"{'fine ' * (2 * i)}day.", (" great",), (" great", " terrible"), i % 2, " It was")
                    for i in range(6)]
    return adapter, adapter.encode(examples)


@pytest.mark.parametrize("kind", ["causal", "masked"])
def test_a_private_step_never_synchronises(kind, tiny_opt, tiny_roberta, shared_data) -> None:
    adapter, items = adapter_and_examples(kind, tiny_opt, tiny_roberta, shared_data)
    params = adapter.trainable()
    estimator = DPZero(SmoothingOptions())
    release = PrivateRelease(ScalarClipper(ScalarClipper.Options(bound=1.0)), GaussianNoise(GaussianNoise.Options()),
                             1.0, 0.1, estimator, 6.0, SecretStream(), PrivacyLedger(1e-5))

    def step(t: int) -> None:
        seed = stream_seed(0, t)
        with torch.inference_mode():
            measured = estimator.per_example(params, lambda: per_example_losses(adapter, items, 4), seed)
            released = release.privatize(measured)
            estimator.update(params, seed, released.coefficients, UpdateContext(t, 1e-3, 0.0))

    with params.deferred_updates():
        for t in (1, 2, 3):  # warm-up: pinned staging buffers, Triton compilation, cuDNN plans, graph capture
            step(t)
        replays = adapter._graphs.replays
        with synchronising_calls() as (sites, inside_model):
            step(4)
            step(5)
        assert adapter._graphs.replays > replays  # the steady state replays captured graphs
    distinct = sorted(set(sites))
    assert not sites, f"{len(sites)} synchronising calls in two steps, from:\n" + "\n".join(distinct)
    assert adapter._prepared_mask
    assert inside_model[0] == 0, f"{inside_model[0] / 2:g} synchronising calls per step inside the Hugging Face forward"


def test_the_training_loops_step_never_synchronises(tiny_opt, shared_data, tmp_path) -> None:
    """The whole loop step (sampling, probe, release, ledger, seed log, update), not only its parts."""
    import zofw

    stepping = zofw.training("recipes/dpzero_opt2.7b_drop.toml", [
        f"model.path={tiny_opt}", f"model.tokenizer={shared_data / 'tokenizers' / 'opt'}", "model.device=cuda",
        "model.dtype=float16", "model.max_length=128", f"task.path={shared_data / 'drop' / 'drop_train_sample.json'}",
        "task.n_train=32", "task.n_eval=4", "task.held_out_public=true", "train.steps=10", "train.log_every=10",
        "train.expected_batch=4", "train.eval_every=0", "privacy.accountant=rdp", 'privacy.report=["rdp"]'],
        out=tmp_path / "run")
    with stepping.params.deferred_updates():
        stepping.step()
        stepping.step()  # warm-up
        with synchronising_calls() as (sites, _):
            stepping.step()
            stepping.step()
        while not stepping.done:
            stepping.step()
    stepping.finish()
    assert not sites, f"{len(sites)} synchronising calls in two loop steps, from:\n" + "\n".join(sorted(set(sites)))
    assert stepping.seedlog.steps() == 10  # every queued record reached the seed log
