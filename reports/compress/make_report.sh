#!/usr/bin/env bash
# Second-stage compression on ADE fold 0, from the ade_benchmark run's distilled student
# (MiniLM-L6, trained on the teacher's labels with soft targets). Every variant is trained on
# the same 1,500 teacher-labelled sentences and scored on the 427 test sentences by `rank`,
# side by side in one process on this machine's CPU (2 threads).
#   bash reports/compress/make_report.sh     (after: ade-distill run pipelines/ade_benchmark.yaml)
set -euo pipefail
RUN=${RUN:-runs/ade_benchmark}
OUT=${OUT:-runs/compress}
EPOCHS=${EPOCHS:-5}
T=$RUN/train-distilled-soft/model
TRAIN=$RUN/label/train.teacher.jsonl
mkdir -p "$OUT"
ade() { .venv/bin/ade-distill "$@"; }
# 3 of 6 layers: all terms, then the ablation (logits only; + hidden; + attention; + value relation)
ade compress --teacher $T --train $TRAIN --out $OUT/L3-all --layers 3 --epochs $EPOCHS
printf 'w_hidden: 0\nw_attention: 0\nw_value: 0\n' > $OUT/logits.yaml
ade compress --teacher $T --train $TRAIN --out $OUT/L3-logits --layers 3 --epochs $EPOCHS --config $OUT/logits.yaml
printf 'w_attention: 0\nw_value: 0\n' > $OUT/hidden.yaml
ade compress --teacher $T --train $TRAIN --out $OUT/L3-logits-hidden --layers 3 --epochs $EPOCHS --config $OUT/hidden.yaml
ade compress --teacher $T --method prune --share 0.3 --out $OUT/pruned30
ade compress --teacher $T --method low-rank --share 0.5 --out $OUT/rank50
# the teacher LLM's predictions with its measured speed and price (reports/teacher)
cp $RUN/label/test.teacher.jsonl $OUT/teacher.jsonl
printf '{"sentences_per_second": 0.286, "cost_usd_per_1k_sentences": 0.1124}\n' > $OUT/teacher.info.json
ade rank --gold $RUN/ingest/test.jsonl --out reports/compress \
  --pred "teacher Qwen2.5-Coder-1.5B=$OUT/teacher.jsonl" \
  --model "student L6=$T" --model "student L6 int8=$T:int8" \
  --model "L3 all terms=$OUT/L3-all" --model "L3 logits only=$OUT/L3-logits" \
  --model "L3 logits+hidden=$OUT/L3-logits-hidden" \
  --model "L6 pruned 30%=$OUT/pruned30" --model "L6 rank 50%=$OUT/rank50"
