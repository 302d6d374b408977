#!/usr/bin/env bash
# The teacher baseline on ADE fold 0 test (run from the repo root after `make install`).
# Labelling takes ~30 min on 2 cores the first time; reruns are answered from the cache.
set -euo pipefail
D=${ADE_DISTILL_SHARED_DATA:-../shared/data}
.venv/bin/ade-distill ingest ade-splits --source $D/ade_splits --fold 0 --part test --out runs/fold0_test.jsonl
.venv/bin/ade-distill label --in runs/fold0_test.jsonl --out runs/teacher_fold0_test.jsonl \
  --teacher pipelines/teachers/qwen1.5b-local.yaml
.venv/bin/ade-distill evaluate --gold runs/fold0_test.jsonl --pred qwen2.5-coder-1.5b=runs/teacher_fold0_test.jsonl \
  --out reports/teacher/metrics.json
.venv/bin/ade-distill report --metrics reports/teacher/metrics.json --no-excerpts --out reports/teacher \
  --title "Teacher baseline: Qwen2.5-Coder-1.5B (llama.cpp, Q4_K_M) on ADE fold 0 test"
.venv/bin/ade-distill labels pack --in runs/teacher_fold0_test.jsonl --out data/teacher_labels/ade_fold0_test.qwen2.5-coder-1.5b.jsonl
