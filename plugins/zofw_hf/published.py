"""The published configurations of OPT and RoBERTa, by short name, for random-weight builds.

``model.path = "opt-2.7b"`` with ``model.random_init = true`` builds facebook/opt-2.7b's architecture
with random weights from the numbers below, without the hub or a config file: speed and memory do not
depend on weight values, so benchmarks of any size run anywhere. The hub ids (``facebook/opt-2.7b``,
``FacebookAI/roberta-large``, ``roberta-large``) name the same configurations when ``random_init`` is set.

Sources: the config.json of each checkpoint on the Hugging Face hub (facebook/opt-*, FacebookAI/roberta-*),
which follow Zhang et al. 2022 (OPT, Table 1) and Liu et al. 2019 (RoBERTa). Every OPT shares vocabulary
50272 (rows; the tokenizer has 50265 tokens), 2048 positions, ReLU, pre-LayerNorm (but OPT-350m, which
is post-LayerNorm with 512-wide embeddings projected to 1024), tied input and output embeddings.
"""

from __future__ import annotations

from typing import Any, Optional

# name: (hidden, layers, heads, ffn); OPT's head dimension is always hidden / heads = 64 or 128
OPT = {
    "opt-125m": (768, 12, 12, 3072),
    "opt-350m": (1024, 24, 16, 4096),
    "opt-1.3b": (2048, 24, 32, 8192),
    "opt-2.7b": (2560, 32, 32, 10240),
    "opt-6.7b": (4096, 32, 32, 16384),
    "opt-13b": (5120, 40, 40, 20480),
    "opt-30b": (7168, 48, 56, 28672),
    "opt-66b": (9216, 64, 72, 36864),
}
ROBERTA = {
    "roberta-base": (768, 12, 12, 3072),
    "roberta-large": (1024, 24, 16, 4096),
}
# short names that are also hub ids of the pretrained weights (the hub's legacy aliases of FacebookAI/…)
LEGACY_HUB_IDS = frozenset(ROBERTA)
HUB_OWNER = {**{name: "facebook" for name in OPT}, **{name: "FacebookAI" for name in ROBERTA}}


def short_name(path: str) -> Optional[str]:
    """The published configuration ``path`` names ("opt-2.7b", "facebook/opt-2.7b", "roberta-large",
    "FacebookAI/roberta-large"; any case), or None."""
    name = path.strip().lower()
    owner, _, rest = name.rpartition("/")
    if rest in HUB_OWNER and owner in ("", HUB_OWNER[rest].lower()):
        return rest
    return None


def hub_id(name: str) -> str:
    """The hub id of the pretrained checkpoint with a published configuration: facebook/opt-2.7b."""
    return f"{HUB_OWNER[name]}/{name}"


def config_values(name: str) -> dict[str, Any]:
    """Keyword arguments of the transformers config class of the published configuration ``name``."""
    if name in OPT:
        hidden, layers, heads, ffn = OPT[name]
        post_ln = name == "opt-350m"
        return {"vocab_size": 50272, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                "ffn_dim": ffn, "max_position_embeddings": 2048, "word_embed_proj_dim": 512 if post_ln else hidden,
                "do_layer_norm_before": not post_ln, "activation_function": "relu", "dropout": 0.1,
                "attention_dropout": 0.0, "enable_bias": True, "pad_token_id": 1, "bos_token_id": 2,
                "eos_token_id": 2, "tie_word_embeddings": True, "architectures": ["OPTForCausalLM"]}
    hidden, layers, heads, ffn = ROBERTA[name]
    return {"vocab_size": 50265, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": ffn, "max_position_embeddings": 514, "type_vocab_size": 1, "hidden_act": "gelu",
            "layer_norm_eps": 1e-5, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
            "tie_word_embeddings": True, "architectures": ["RobertaForMaskedLM"]}


def published_config(name: str) -> Any:
    """The transformers config (OPTConfig or RobertaConfig) of the published configuration ``name``."""
    import transformers

    cls = transformers.OPTConfig if name in OPT else transformers.RobertaConfig
    config = cls(**config_values(name))
    config._name_or_path = hub_id(name)
    return config

