#!/usr/bin/env bash
# The 10-fold ADE benchmark on one GPU, as one script for one short device lease:
#   ADE_GPU_ENCODER=/path/to/BiomedBERT-base bash scripts/ade_10fold_gpu.sh
# ADE_GPU_ENCODER: the encoder (default: the pipeline's HF id; a local folder where the hub is out
# of reach). Prints the GPU, the run's wall time and the k-fold table; the report lands in
# reports/ade_10fold_gpu/ (commit it with the printed time).
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || { echo "no GPU here" >&2; exit 1; }
PIPE=pipelines/ade_10fold_gpu.yaml
if [ -n "${ADE_GPU_ENCODER:-}" ]; then
  PIPE=$(mktemp --suffix=.yaml)
  sed "s#model: microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract#model: ${ADE_GPU_ENCODER}#" \
    pipelines/ade_10fold_gpu.yaml > "$PIPE"
fi
ADE=${ADE:-.venv/bin/ade-distill}
start=$(date +%s)
"$ADE" run "$PIPE" --run-dir runs/ade_10fold_gpu
echo "wall seconds: $(( $(date +%s) - start ))" | tee reports/ade_10fold_gpu/wall_seconds.txt
sed -n '/## Mean/,/## Micro/p' reports/ade_10fold_gpu/folds.md
