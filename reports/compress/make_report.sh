#!/usr/bin/env bash
# Second-stage compression on ADE fold 0, from the ade_benchmark run's distilled student
# (MiniLM-L6, trained on the teacher's labels with soft targets). The ablation variants are
# trained on the same 1,500 teacher-labelled sentences for $EPOCHS epochs; the "augmented"
# students also see the other 2,345 fold 0 train sentences (text only), labelled by the
# teacher-student itself (no LLM call, no gold), for $AUG_EPOCHS epochs. Everything is scored on
# the 427 test sentences by `rank`, side by side in one process on this machine's CPU (2 threads).
#   EPOCHS=3 bash reports/compress/make_report.sh   (after: ade-distill run pipelines/ade_benchmark.yaml)
# The committed report was made with the 1,500-sentence ade_benchmark pipeline of git 2e57600, whose
# teacher-student was train-distilled-soft; today's pipeline trains on all 3,845 sentences and names it
# train-distilled: run with T=runs/ade_benchmark/train-distilled/model (and no UNLABELED sentences remain).
set -euo pipefail
RUN=${RUN:-runs/ade_benchmark}
OUT=${OUT:-runs/compress}
EPOCHS=${EPOCHS:-5}
AUG_EPOCHS=${AUG_EPOCHS:-10}
UNLABELED=$RUN/ingest/unlabeled.jsonl
T=${T:-$RUN/train-distilled-soft/model}
TRAIN=$RUN/label/train.teacher.jsonl
mkdir -p "$OUT"
ade() { .venv/bin/ade-distill "$@"; }
c() { local name=$1; shift; [ -f "$OUT/$name/ade_student.json" ] || ade compress --teacher $T --out "$OUT/$name" "$@"; }
# 3 of 6 layers: all terms, then the ablation (logits only; + hidden; + attention; + value relation)
c L3-all --train $TRAIN --layers 3 --epochs $EPOCHS
printf 'w_hidden: 0\nw_attention: 0\nw_value: 0\n' > $OUT/logits.yaml
c L3-logits --train $TRAIN --layers 3 --epochs $EPOCHS --config $OUT/logits.yaml
printf 'w_attention: 0\nw_value: 0\n' > $OUT/hidden.yaml
c L3-logits-hidden --train $TRAIN --layers 3 --epochs $EPOCHS --config $OUT/hidden.yaml
printf 'w_value: 0\n' > $OUT/attention.yaml
c L3-logits-hidden-attn --train $TRAIN --layers 3 --epochs $EPOCHS --config $OUT/attention.yaml
printf 'alpha: 0\nw_hidden: 0\nw_attention: 0\nw_value: 0\n' > $OUT/none.yaml   # no KD: hard labels only
c L3-no-kd --train $TRAIN --layers 3 --epochs $EPOCHS --config $OUT/none.yaml
# 3 of 6 layers with the teacher-student's own labels on the unlabelled train sentences
c L3-all-aug --train $TRAIN --unlabeled $UNLABELED --layers 3 --epochs $AUG_EPOCHS
c L3-logits-aug --train $TRAIN --unlabeled $UNLABELED --layers 3 --epochs $AUG_EPOCHS --config $OUT/logits.yaml
# 6 of 6 layers on the same augmented data: self-distillation ("born again"), the student issue's best
c L6-born-again-aug --train $TRAIN --unlabeled $UNLABELED --layers 6 --epochs 6
c pruned30 --method prune --share 0.3
c rank50 --method low-rank --share 0.5
# the teacher's speed and cost from its committed run record (whole run: sentences over wall time;
# cost: its measured tokens at gpt-4o-mini prices)
.venv/bin/python scripts/teacher_info.py reports/teacher/run_fold0_test.json $RUN/label/test.teacher.info.json
# every model of the benchmark run (students fp32 + int8, teacher) plus the compressed ones
ade rank --run $RUN --out reports/compress \
  --model "L3 all terms=$OUT/L3-all" --model "L3 logits only=$OUT/L3-logits" \
  --model "L3 logits+hidden=$OUT/L3-logits-hidden" --model "L3 logits+hidden+attention=$OUT/L3-logits-hidden-attn" \
  --model "L3 no KD=$OUT/L3-no-kd" \
  --model "L3 all terms, augmented=$OUT/L3-all-aug" --model "L3 logits only, augmented=$OUT/L3-logits-aug" \
  --model "L6 self-distilled, augmented=$OUT/L6-born-again-aug" \
  --model "L6 pruned 30%=$OUT/pruned30" --model "L6 rank 50%=$OUT/rank50"
