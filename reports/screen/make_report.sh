#!/usr/bin/env bash
# The screening report on the PubMed fixtures in ../shared/data/pubmed, rendered in headless
# chromium: reports/screen/report.html, articles.csv and screenshot.png.
#   MODEL=runs/ade_10fold/fold-0/train-distilled/model bash reports/screen/make_report.sh
# MODEL: a trained student (default: ADE fold 0's distilled student from ade_10fold.yaml).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${MODEL:-runs/ade_10fold/fold-0/train-distilled/model}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
.venv/bin/ade-distill screen --model "$MODEL" --input ../shared/data/pubmed --drugs budesonide formoterol terbutaline \
  --engine ray --workers 2 --out "$OUT/screen"
cp "$OUT/screen/report.html" "$OUT/screen/articles.csv" "$OUT/screen/mentions.csv" "$OUT/screen/problems.txt" reports/screen/
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --user-data-dir="$OUT/profile" --window-size=1200,1500 --screenshot=reports/screen/screenshot.png \
  "file://$PWD/reports/screen/report.html"
