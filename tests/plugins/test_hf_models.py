"""The Hugging Face adapters on tiny random-weight OPT and RoBERTa models with the real tokenizers (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers

from zofw.batching import bucket_width
from zofw.errors import BadInput
from zofw.evaluate import per_example_losses
from zofw.slots.task import Example
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TOKENIZERS = {name: DATA / "tokenizers" / name for name in ("opt", "roberta", "gpt2")}
OPT_TOKENIZER, ROBERTA_TOKENIZER = TOKENIZERS["opt"], TOKENIZERS["roberta"]
pytestmark = pytest.mark.skipif(not all(path.is_dir() for path in TOKENIZERS.values()),
                                reason=f"real tokenizer folders not found under {DATA}")

NEWLINE = 50118  # "\n" (Ċ) in the OPT/RoBERTa BPE vocabulary


@pytest.fixture(scope="module")
def opt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = transformers.OPTConfig(vocab_size=50272, hidden_size=16, num_hidden_layers=2, ffn_dim=64,
                                    num_attention_heads=2, max_position_embeddings=512, word_embed_proj_dim=16)
    path = tmp_path_factory.mktemp("opt")
    transformers.OPTForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # GPT-2, unlike OPT, does not derive positions from the attention mask: it proves position_ids are passed.
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50257, n_embd=16, n_layer=2, n_head=2, n_positions=256)
    path = tmp_path_factory.mktemp("gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = transformers.RobertaConfig(vocab_size=50265, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=64, max_position_embeddings=514, type_vocab_size=1)
    path = tmp_path_factory.mktemp("roberta")
    transformers.RobertaForMaskedLM(config).save_pretrained(path)
    return path


def causal(opt_dir: Path, kind: str, **options: object) -> CausalLM:
    adapter = CausalLM(CausalLM.Options(path=str(opt_dir), tokenizer=str(OPT_TOKENIZER), device="cpu", **options))
    adapter.check()
    adapter.load(kind)
    return adapter


def masked(roberta_dir: Path, **options: object) -> MaskedLM:
    adapter = MaskedLM(MaskedLM.Options(path=str(roberta_dir), tokenizer=str(ROBERTA_TOKENIZER), device="cpu",
                                        **options))
    adapter.check()
    adapter.load("classification")
    return adapter


@pytest.fixture(scope="module")
def generator(opt_dir: Path) -> CausalLM:
    return causal(opt_dir, "generation", max_new_tokens=4)


@pytest.fixture(scope="module")
def classifier(opt_dir: Path) -> CausalLM:
    return causal(opt_dir, "classification")


@pytest.fixture(scope="module")
def roberta(roberta_dir: Path) -> MaskedLM:
    return masked(roberta_dir)


QA = [Example("Question: who wrote it?\nAnswer:", (" Jane Austen\n",)),
      Example("Hi:", (" a much longer answer than the others\n",)),
      Example("Passage: The river is long and wide and slow.\nQuestion: how is it?\nAnswer:", (" wide",))]
CHOICE = [Example("The film was dull. It was", (" terrible",), (" great", " terrible", " not bad at all"), 1),
          Example("Loved it!", (" great",), (" great", " terrible", " not bad at all"), 0),
          Example("A long, winding and rather tedious story about nothing much.", (" terrible",),
                  (" great", " terrible", " not bad at all"), 2)]


def manual_nll(adapter: CausalLM, prompt: list[int], target: list[int]) -> float:
    """Mean NLL of ``target`` after ``prompt`` from the full logits of one unpadded sequence."""
    with torch.no_grad():
        logits = adapter.model(input_ids=torch.tensor([prompt + target])).logits[0].float()
    logp = F.log_softmax(logits, dim=-1)
    return -sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(target)) / len(target)


# --- causal_lm ------------------------------------------------------------------------------------


def test_left_padded_batch_equals_each_example_alone(generator: CausalLM, gpt2_dir: Path) -> None:
    gpt2 = CausalLM(CausalLM.Options(path=str(gpt2_dir), tokenizer=str(TOKENIZERS["gpt2"]), device="cpu",
                                     max_new_tokens=4))
    gpt2.load("generation")
    for adapter in (generator, gpt2):
        items = adapter.encode(QA)
        shapes = []  # the vocabulary projection runs only where a target token is predicted
        hook = adapter.model.get_output_embeddings().register_forward_hook(lambda m, i, o: shapes.append(o.shape))
        batched = per_example_losses(adapter, items, 3)
        hook.remove()
        widest = max(bucket_width(len(item.prompt) + len(item.target), adapter.max_length) for item in items)
        assert all(rows == 3 and keep < widest and vocab == adapter.model.config.vocab_size
                   for rows, keep, vocab in shapes)
        alone = torch.cat([per_example_losses(adapter, [item], 1) for item in items])
        assert batched.shape == (3,) and batched.dtype == torch.float32
        torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
        assert adapter.predict(QA, "generation", 3) == [adapter.predict([e], "generation", 1)[0] for e in QA]
    assert gpt2.pad_id == gpt2.tokenizer.eos_token_id  # GPT-2 has no pad token
    with pytest.raises(BadInput, match="empty prompt"):  # and no BOS to predict a first answer token from
        gpt2.encode([Example("", (" answer",))])


def test_loss_covers_only_the_target_and_matches_full_logits(generator: CausalLM) -> None:
    item = generator.encode(QA[:1])[0]
    tok = generator.tokenizer
    assert item.prompt == tuple(tok(QA[0].prompt).input_ids) and item.prompt[0] == tok.bos_token_id == 2
    assert item.target == tuple(tok.encode(QA[0].answers[0], add_special_tokens=False))
    loss = float(per_example_losses(generator, [item], 1)[0])
    assert loss == pytest.approx(manual_nll(generator, list(item.prompt), list(item.target)), abs=1e-5)
    other = generator.encode([Example(QA[0].prompt, (" Charlotte Bronte\n",))])[0]
    assert other.prompt == item.prompt
    assert float(per_example_losses(generator, [other], 1)[0]) != pytest.approx(loss, abs=1e-6)


def test_truncation_drops_the_start_of_the_prompt_never_bos_or_answer(opt_dir: Path) -> None:
    adapter = causal(opt_dir, "generation", max_length=12, max_new_tokens=4)
    example = Example("one two three four five six seven eight nine ten eleven twelve", (" thirteen fourteen",))
    item = adapter.encode([example])[0]
    full = adapter.tokenizer(example.prompt).input_ids
    assert item.target == tuple(adapter.tokens(example.answers[0]))
    assert len(item.prompt) + len(item.target) == 12
    assert item.prompt[0] == 2 and item.prompt[1:] == tuple(full[len(full) - len(item.prompt) + 1:])
    with pytest.raises(BadInput, match="example 0"):
        adapter.encode([Example("x", (" word" * 20,))])


def test_classification_picks_the_best_length_normalised_choice(classifier: CausalLM) -> None:
    tok = classifier.tokenizer
    expected = []
    for example in CHOICE:
        prompt = tok(example.prompt).input_ids
        scores = [manual_nll(classifier, prompt, classifier.tokens(c)) for c in example.choices]
        expected.append(min(range(len(scores)), key=scores.__getitem__))
    assert classifier.predict(CHOICE, "classification", batch_size=2) == expected
    items = classifier.encode(CHOICE)  # the training target is the gold choice
    assert [item.target for item in items] == [item.choices[e.label] for item, e in zip(items, CHOICE)]
    with pytest.raises(BadInput, match="label 5"):
        classifier.encode([Example("x", (" a",), (" a", " b"), 5)])


def test_generation_is_greedy_stops_at_newline_and_respects_max_new_tokens(generator: CausalLM) -> None:
    tok, expected = generator.tokenizer, []
    for example in QA:  # reference: 4 greedy steps on the unpadded prompt, cut at the first newline
        ids = tok(example.prompt).input_ids
        for _ in range(4):
            with torch.no_grad():
                ids.append(int(generator.model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
        text = tok.decode(ids[len(tok(example.prompt).input_ids):], skip_special_tokens=True)
        expected.append(text.split("\n", 1)[0].strip())
    predicted = generator.predict(QA, "generation", batch_size=3)
    assert predicted == expected and all(isinstance(p, str) and "\n" not in p for p in predicted)
    assert any(predicted), "a random model should emit some text"


def test_generation_of_a_newline_model_is_empty(opt_dir: Path) -> None:
    adapter = causal(opt_dir, "generation", max_new_tokens=5)
    with torch.no_grad():  # every position outputs the final-norm bias, aimed at the "\n" embedding
        embedding = adapter.model.get_input_embeddings().weight
        embedding[NEWLINE] *= 4
        norm = adapter.model.model.decoder.final_layer_norm
        norm.weight.zero_()
        norm.bias.copy_(embedding[NEWLINE])
    assert adapter.predict(QA, "generation", batch_size=2) == ["", "", ""]


# --- masked_lm ------------------------------------------------------------------------------------

SENTIMENT = [Example("A gripping, beautiful film. It was", (" great",), (" terrible", " great"), 1, suffix="."),
             Example("Dull. It was", (" terrible",), (" terrible", " great"), 0, suffix="."),
             Example("", (" Human",), (" Description", " Human", " Number"), 1, suffix=": Who wrote Hamlet?")]


def test_masked_loss_is_cross_entropy_over_choice_logits_at_the_mask(roberta: MaskedLM) -> None:
    items = roberta.encode(SENTIMENT)
    tok = roberta.tokenizer
    assert items[1].ids == tuple(tok("Dull. It was<mask>.").input_ids)
    assert items[0].choices == (tok.encode(" terrible", add_special_tokens=False)[0],
                                tok.encode(" great", add_special_tokens=False)[0])
    shapes = []  # the head runs on the mask positions only
    hook = roberta.model.get_output_embeddings().register_forward_hook(lambda m, i, o: shapes.append(o.shape))
    losses, expected, argmaxes = per_example_losses(roberta, items, 3), [], []
    hook.remove()
    assert all(shape == (3, roberta.model.config.vocab_size) for shape in shapes)
    for item in items:
        with torch.no_grad():
            logits = roberta.model(input_ids=torch.tensor([item.ids])).logits[0, item.mask_at, list(item.choices)]
        expected.append(float(F.cross_entropy(logits[None], torch.tensor([item.label]))))
        argmaxes.append(int(logits.argmax()))
    assert losses.dtype == torch.float32 and losses.shape == (3,)
    torch.testing.assert_close(losses, torch.tensor(expected), atol=1e-5, rtol=0)
    assert roberta.predict(SENTIMENT, "classification", batch_size=2) == argmaxes


def test_masked_truncation_keeps_specials_mask_and_suffix(roberta_dir: Path) -> None:
    adapter = masked(roberta_dir, max_length=12)
    example = Example("one two three four five six seven eight nine ten. It was", (" great",),
                      (" terrible", " great"), 1, suffix=" .")
    item = adapter.encode([example])[0]
    tok = adapter.tokenizer
    assert len(item.ids) == 12 and item.ids[0] == tok.cls_token_id and item.ids[-1] == tok.sep_token_id
    assert item.ids[item.mask_at] == tok.mask_token_id
    assert tok.decode(item.ids[item.mask_at - 2:]) == " It was<mask> .</s>"


def test_masked_refuses_generation_and_ambiguous_choices(roberta: MaskedLM, roberta_dir: Path) -> None:
    adapter = MaskedLM(MaskedLM.Options(path=str(roberta_dir), tokenizer=str(ROBERTA_TOKENIZER), device="cpu"))
    with pytest.raises(BadInput, match="model 'masked_lm' cannot do generation tasks"):
        adapter.load("generation")
    with pytest.raises(BadInput, match="begin with the same token"):
        roberta.encode([Example("It was", (" great",), (" great", " great film"), 0)])


# --- shared -------------------------------------------------------------------------------------


def test_trainable_bias_selects_only_bias_tensors(generator: CausalLM, roberta: MaskedLM) -> None:
    for adapter in (generator, roberta):
        named = dict(adapter.model.named_parameters())
        assert adapter.trainable().names == list(named)  # "all" by default
        bias = type(adapter)(adapter.options.model_copy(update={"trainable": "bias"}))
        bias._model, bias._tokenizer = adapter.model, adapter.tokenizer  # reuse the loaded weights
        chosen = bias.trainable()
        assert chosen.names and all(name.endswith(".bias") for name in chosen.names)
        assert chosen.names == [name for name in named if name.endswith(".bias")]
        assert all(t.data_ptr() == named[n].data_ptr() for n, t in zip(chosen.names, chosen.tensors))
        nothing = type(adapter)(adapter.options.model_copy(update={"trainable": "no_such_parameter"}))
        nothing._model = adapter.model
        with pytest.raises(BadInput, match="selects no parameters"):
            nothing.trainable()


def test_check_refuses_missing_local_paths_and_bad_options(tmp_path: Path, opt_dir: Path) -> None:
    missing = tmp_path / "no-such-model"
    for adapter_class in (CausalLM, MaskedLM):
        with pytest.raises(BadInput, match=r"^model\.path: no such directory: .*no-such-model$"):
            adapter_class(adapter_class.Options(path=str(missing))).check()
    with pytest.raises(BadInput, match=r"^model\.tokenizer: no such directory"):
        CausalLM(CausalLM.Options(path="facebook/opt-125m", tokenizer="./nowhere/tok")).check()
    with pytest.raises(BadInput, match="model.trainable"):
        CausalLM(CausalLM.Options(path=str(opt_dir), trainable="(unclosed")).check()
    if not torch.cuda.is_available():  # a GPU recipe validates on a CPU machine, and fails only at load
        CausalLM(CausalLM.Options(path=str(opt_dir), device="cuda")).check()
        with pytest.raises(BadInput, match="model.device"):
            CausalLM(CausalLM.Options(path=str(opt_dir), device="cuda")).load("generation")


def test_load_failures_are_one_line_bad_input(tmp_path: Path, opt_dir: Path) -> None:
    with pytest.raises(BadInput, match="^model.path: cannot load") as empty:
        CausalLM(CausalLM.Options(path=str(tmp_path), tokenizer=str(OPT_TOKENIZER), device="cpu")).load("generation")
    assert "\n" not in str(empty.value)
    with pytest.raises(BadInput, match="^model.path: cannot load"):  # an OPT checkpoint is no masked LM
        MaskedLM(MaskedLM.Options(path=str(opt_dir), tokenizer=str(ROBERTA_TOKENIZER), device="cpu")).load(
            "classification")
