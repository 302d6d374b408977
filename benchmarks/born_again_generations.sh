#!/usr/bin/env bash
# Further born-again generations (issue #12, item 4): distilled-again of
# `ade-distill run pipelines/ade_benchmark.yaml` (generation 1) teaches a new 3-layer student on the
# same 3,845 teacher-labelled sentences with the same settings (compress defaults, 6 epochs), which
# teaches the next, up to generation $GENERATIONS; settings fixed before any was scored, no gold in
# training, each generation scored once on fold 0 test beside the teacher.
#   GENERATIONS=3 bash benchmarks/born_again_generations.sh   (after the ade_benchmark run; ~11 min a generation on 2 cores)
set -euo pipefail
RUN=${RUN:-runs/ade_benchmark}
OUT=${OUT:-runs/born_again}
GENERATIONS=${GENERATIONS:-3}
ade() { .venv/bin/ade-distill "$@"; }
prev="$RUN/train-distilled-again/model"
preds=(--pred "teacher=$RUN/label/test.teacher.jsonl" --pred "born again, generation 1=$RUN/evaluate/predictions/distilled-again.jsonl")
for g in $(seq 2 "$GENERATIONS"); do
  [ -f "$OUT/gen$g/ade_student.json" ] || ade compress --teacher "$prev" --train "$RUN/label/train.teacher.jsonl" \
    --layers 3 --epochs 6 --out "$OUT/gen$g"
  ade predict --model "$OUT/gen$g" --in "$RUN/ingest/test.jsonl" --out "$OUT/gen${g}_test.jsonl"
  preds+=(--pred "born again, generation $g=$OUT/gen${g}_test.jsonl")
  prev="$OUT/gen$g"
done
ade evaluate --gold "$RUN/ingest/test.jsonl" "${preds[@]}" --out reports/ade_benchmark/born_again_generations.json
