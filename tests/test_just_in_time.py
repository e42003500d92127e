"""zofw.just_in_time: forwards inside perturbed() see θ + αu, one launch per block, θ never written."""

from __future__ import annotations

import contextlib

import pytest
import torch
from transformers import OPTConfig, OPTForCausalLM

from zofw.directions import iter_direction, perturbed
from zofw.just_in_time import gathered_embeddings, plan_blocks
from zofw.params import TrainableParams


@pytest.fixture()
def opt() -> OPTForCausalLM:
    torch.manual_seed(0)
    config = OPTConfig(hidden_size=32, num_hidden_layers=3, ffn_dim=64, num_attention_heads=4, vocab_size=2000,
                       max_position_embeddings=64, word_embed_proj_dim=32)
    return OPTForCausalLM(config).eval()


def shifted_copy(model: OPTForCausalLM, seed: int, alpha: float) -> OPTForCausalLM:
    """The same model with θ + αu written into its weights (what the probe must be equivalent to)."""
    twin = OPTForCausalLM(model.config).eval()
    twin.load_state_dict(model.state_dict())
    params = TrainableParams.select(twin, "all")
    for _, tensor, u in iter_direction(params, seed):
        tensor.add_(u, alpha=alpha)
    return twin


def deep_opt() -> OPTForCausalLM:
    """20 layers and a small vocabulary: a layer is under 1/16 of the model, as in real ones."""
    torch.manual_seed(0)
    config = OPTConfig(hidden_size=32, num_hidden_layers=20, ffn_dim=64, num_attention_heads=4, vocab_size=64,
                       max_position_embeddings=64, word_embed_proj_dim=32)
    return OPTForCausalLM(config).eval()


def test_blocks_are_layers_that_cover_every_tensor_once() -> None:
    params = TrainableParams.select(deep_opt(), "all")
    blocks = plan_blocks(params)
    kinds = [type(block.module).__name__ for block in blocks]
    assert kinds.count("OPTDecoderLayer") == 20
    held = [(id(module), name) for block in blocks for module, name, _ in block.members]
    assert len(held) == len(set(held))  # each module attribute swapped by one block (tied tensors: by two)
    covered = {index for block in blocks for _, _, index in block.members}
    looked_up = {index for _, index in gathered_embeddings(params)}  # only their rows are ever formed
    assert looked_up and covered | looked_up == set(range(len(params.tensors)))


def test_a_forward_inside_sees_theta_plus_alpha_u_and_theta_is_untouched(opt) -> None:
    params = TrainableParams.select(opt, "all")
    ids = torch.randint(0, 200, (2, 9))
    before = params.flat.clone()
    with torch.inference_mode(), perturbed(params, 5, 1e-2):
        got = opt(input_ids=ids).logits
    want = shifted_copy(opt, 5, 1e-2)(input_ids=ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert torch.equal(params.flat, before)
    with torch.inference_mode():  # outside the block: θ itself again
        torch.testing.assert_close(opt(input_ids=ids).logits, OPTForCausalLM.forward(opt, input_ids=ids).logits)


def test_a_submodule_called_on_its_own_is_perturbed_too(opt) -> None:
    """An adapter may call a module inside a block without the block (the fallback hook swaps it)."""
    params = TrainableParams.select(opt, "all")
    layer = opt.model.decoder.layers[1]
    x = torch.randn(4, 32)
    twin = shifted_copy(opt, 9, 0.1)
    with torch.inference_mode():
        with perturbed(params, 9, 0.1):
            got = layer.fc1(x)
        torch.testing.assert_close(got, twin.model.decoder.layers[1].fc1(x), rtol=0, atol=1e-5)


def test_fallback_hooks_of_modules_inside_a_block_go_once_the_block_ran() -> None:
    opt = deep_opt()
    params = TrainableParams.select(opt, "all")
    fc1 = opt.model.decoder.layers[0].fc1
    ids = torch.randint(0, 64, (1, 5))
    with torch.inference_mode(), perturbed(params, 1, 1e-3):
        assert fc1._forward_pre_hooks  # installed on first use
        opt(input_ids=ids)
    assert not fc1._forward_pre_hooks and not fc1._forward_hooks
    want = shifted_copy(opt, 2, 1e-3)(input_ids=ids).logits
    with torch.inference_mode(), perturbed(params, 2, 1e-3):
        torch.testing.assert_close(opt(input_ids=ids).logits, want, rtol=0, atol=1e-5)


def test_a_forward_that_raises_leaves_theta_in_place(opt) -> None:
    params = TrainableParams.select(opt, "all")
    before = {name: p.data_ptr() for name, p in opt.named_parameters()}
    with pytest.raises(IndexError), torch.inference_mode(), perturbed(params, 3, 1e-3):
        opt(input_ids=torch.full((1, 4), 10_000))  # out-of-vocabulary id: the embedding raises
    assert {name: p.data_ptr() for name, p in opt.named_parameters()} == before


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_deferred_updates_train_bitwise_like_updates_applied_at_once(opt, dtype) -> None:
    """Fusing each update into the next probe's pass changes where it is computed, not one bit of θ."""
    from zofw.slots.estimator import UpdateContext
    from zofw_zo.estimators import DPZero, SmoothingOptions

    ids = torch.randint(0, 200, (3, 7), generator=torch.Generator().manual_seed(4))
    start = opt.to(dtype).state_dict()
    finals = []
    for deferred in (False, True):
        opt.load_state_dict(start)
        params = TrainableParams.select(opt, "all")
        estimator = DPZero(SmoothingOptions())

        def losses() -> torch.Tensor:
            return opt(input_ids=ids).logits.float().logsumexp(-1).mean(-1)

        with torch.inference_mode(), (params.deferred_updates() if deferred else contextlib.nullcontext()):
            for step in range(1, 5):
                measured = estimator.per_example(params, losses, seed=step)
                coefficient = measured.values.mean(0)  # a device tensor, as a release gives it
                estimator.update(params, step, coefficient, UpdateContext(step, 1e-2, 0.0))
                if deferred:
                    assert params.just_in_time().pending is not None  # not applied yet
        finals.append(params.flat.clone())
        params.forget_layout()
    opt.load_state_dict(start)
    assert torch.equal(finals[0], finals[1])
    assert not torch.equal(finals[0], TrainableParams.select(opt, "all").flat)  # the steps did move θ
