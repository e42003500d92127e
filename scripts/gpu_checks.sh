#!/usr/bin/env bash
# On one CUDA GPU, from the repo root after `source .device/setup.sh`:
#   scripts/gpu_checks.sh DATA_DIR OUT_DIR
# 1. the CUDA tests: kernel ≡ reference, bitwise-exact weights (lr = 0) and batch independence on cuda;
# 2. `zofw bench` on random-weight builds of the published OPT-2.7B, OPT-13B and RoBERTa-large configs
#    (the settings of docs/benchmarks.md), one JSON line each in OUT_DIR/bench.jsonl.
set -uo pipefail
data=${1:?DATA_DIR}; out=${2:?OUT_DIR}; mkdir -p "$out"
export ZOFW_TEST_DEVICE=cuda ZOFW_SHARED_DATA="$data"
[ "${SKIP_TESTS:-0}" = 1 ] || python3 -m pytest -q -p no:cacheprovider tests/kernels tests/test_exact_weights.py tests/test_step_never_waits.py tests/test_just_in_time.py \
  tests/privacy/test_batch_independence.py 2>&1 | tail -15 | tee "$out/tests.txt"
python3 - "$out" <<'PY'
import sys
from transformers import OPTConfig, RobertaConfig
out = sys.argv[1]  # published shapes (../shared/data/README.md)
OPTConfig(hidden_size=2560, num_hidden_layers=32, ffn_dim=10240, num_attention_heads=32, vocab_size=50272,
          max_position_embeddings=2048, word_embed_proj_dim=2560).save_pretrained(f"{out}/opt-2.7b")
OPTConfig(hidden_size=5120, num_hidden_layers=40, ffn_dim=20480, num_attention_heads=40, vocab_size=50272,
          max_position_embeddings=2048, word_embed_proj_dim=5120).save_pretrained(f"{out}/opt-13b")
RobertaConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
              vocab_size=50265, max_position_embeddings=514, type_vocab_size=1).save_pretrained(f"{out}/roberta-large")
PY
bench() { zofw bench "$@" --json 2>>"$out/bench.err" | tail -1 | tee -a "$out/bench.jsonl"; }
opt=(--set model.random_init=true --set "model.tokenizer=$data/tokenizers/opt")
# MODES and MODELS narrow the run (one device call may not hold all six benches)
for mode in ${MODES:-exact inplace}; do
  for model in ${MODELS:-opt-2.7b opt-13b roberta-large}; do
    case $model in
      opt-2.7b) bench recipes/dpzero_opt2.7b_drop.toml --set "model.path=$out/opt-2.7b" "${opt[@]}" \
                  --batch 16 --length 256 --set estimator.perturbation=$mode ;;
      opt-13b) bench recipes/dpzero_opt2.7b_drop.toml --set "model.path=$out/opt-13b" "${opt[@]}" \
                 --batch 4 --length 512 --set estimator.perturbation=$mode ;;
      roberta-large) bench recipes/dpzero_roberta-large_sst2.toml --set "model.path=$out/roberta-large" \
                       --set model.random_init=true --set "model.tokenizer=$data/tokenizers/roberta" \
                       --set model.dtype=float16 --set model.device=cuda --batch 64 --length 128 \
                       --set estimator.perturbation=$mode ;;
    esac
  done
done
