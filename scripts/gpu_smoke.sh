#!/usr/bin/env bash
# Run the OPT-2.7B DROP recipe on one CUDA GPU with random weights built from OPT-2.7B's published
# config (no hub access needed), the real OPT tokenizer and the real DROP sample, and report the
# result (step time, peak memory, ε per accountant).
# Usage (GPU machine, repo root): scripts/gpu_smoke.sh DATA_DIR STEPS OUT_DIR
#   DATA_DIR holds tokenizers/opt/ and drop/drop_train_sample.json (a copy of ../shared/data).
set -euo pipefail
data=${1:?DATA_DIR}; steps=${2:-200}; out=${3:-/tmp/zofw-gpu}
python3 - "$out/opt-2.7b" <<'PY'
import sys
from transformers import OPTConfig
# published OPT-2.7B shape (see ../shared/data/README.md)
OPTConfig(hidden_size=2560, num_hidden_layers=32, ffn_dim=10240, num_attention_heads=32, vocab_size=50272,
          max_position_embeddings=2048, word_embed_proj_dim=2560).save_pretrained(sys.argv[1])
PY
zofw run recipes/dpzero_opt2.7b_drop.toml --json --out "$out/run" \
  --set model.path="$out/opt-2.7b" --set model.random_init=true \
  --set model.tokenizer="$data/tokenizers/opt" \
  --set task.path="$data/drop/drop_train_sample.json" --set task.n_eval=64 \
  --set train.steps="$steps" --set train.eval_every=0 "${@:4}"
