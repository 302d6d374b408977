#!/usr/bin/env bash
# Rebuilds the example report on the embedded sample (run from the repo root after `make install`).
set -euo pipefail
S=data/sample
.venv/bin/python reports/sample/make_example_predictions.py
.venv/bin/ade-distill evaluate --gold $S/gold.jsonl \
  --pred edited-recall=$S/predictions/edited-recall.jsonl \
  --pred edited-boundary=$S/predictions/edited-boundary.jsonl \
  --out reports/sample/metrics.json
.venv/bin/ade-distill report --metrics reports/sample/metrics.json --gold $S/gold.jsonl \
  --pred edited-recall=$S/predictions/edited-recall.jsonl \
  --pred edited-boundary=$S/predictions/edited-boundary.jsonl \
  --out reports/sample --show-command \
  --title "Example report on the embedded sample (synthetic edited predictions)"
