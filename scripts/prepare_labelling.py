"""The teacher's labelling queues, rebuilt the same way every time, with the committed labels
unpacked as each queue's resume point.

  python scripts/prepare_labelling.py [--shared ../shared/data] [--out runs/label]

Writes, under --out (sentence files, then the labels made so far for each view):
  fold0_train.jsonl            fold 0 train (3,845 sentences), the order the labels are made in
  fold0_test.jsonl             fold 0 test (427); train + test are all 4,272 positive sentences
  fold0_dev.jsonl              the dev split of fold 0 train that recipes are chosen on without gold
                               (whole documents, share 0.1, seed 13: benchmarks/dev_selection.py's)
  positive.jsonl               the dev split first, then the rest of fold 0 train, then fold 0 test:
                               the effect-first view labels in this order, so the yardstick comes first
  neg_shuffled.jsonl           ADE-NEG sentences from documents with no sentence in fold 0 test,
                               shuffled with seed 0 (in-domain text the benchmark never tests on)
  teacher_fold0_train.jsonl    view 1, JSON answers (prompt ade-v2), fold 0 train
  teacher_fold0_train_lines.jsonl   view 2, lines answers (ade-v3-lines), fold 0 train
  teacher_positive_effects.jsonl    view 3, effect-first answers (ade-v4-effects), all positives
  teacher_neg_lines.jsonl      ADE-NEG sentences, lines answers
Then label (each resumes where its committed labels stop; --checkpoint-every keeps the file fresh):
  ade-distill label --in runs/label/fold0_train.jsonl --out runs/label/teacher_fold0_train_lines.jsonl \
      --teacher pipelines/teachers/qwen1.5b-llamacpp-lines.yaml --checkpoint-every 20
  ade-distill label --in runs/label/positive.jsonl --out runs/label/teacher_positive_effects.jsonl \
      --teacher pipelines/teachers/qwen1.5b-llamacpp-effects.yaml --checkpoint-every 20
(the same with fold0_train.jsonl and qwen1.5b-llamacpp.yaml for view 1, neg_shuffled.jsonl and the lines
teacher for ADE-NEG), and pack for committing: ade-distill labels pack --in ... --out data/teacher_labels/...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ade_distill.ingest import ingest_ade_splits
from ade_distill.ingest.ade_corpus import in_domain_negatives
from ade_distill.core.labels import read_unpacked
from ade_distill.core.schema import write_jsonl
from ade_distill.workflows.student import dev_split

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "data" / "teacher_labels"
# (sentence file, labels file in runs/label, committed packed files that seed it)
VIEWS = {
    "teacher_fold0_train.jsonl": ("fold0_train", ["ade_fold0_train.qwen2.5-coder-1.5b.jsonl"]),
    "teacher_fold0_train_lines.jsonl": ("fold0_train", ["ade_fold0_train.qwen2.5-coder-1.5b.lines.jsonl"]),
    "teacher_positive_effects.jsonl": ("positive", ["ade_positive.qwen2.5-coder-1.5b.effects.jsonl"]),
    "teacher_neg_lines.jsonl": ("neg_shuffled", ["ade_neg.qwen2.5-coder-1.5b.lines.jsonl"]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/label")
    args = ap.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    train = list(ingest_ade_splits(shared / "ade_splits", fold=0, part="train"))
    test = list(ingest_ade_splits(shared / "ade_splits", fold=0, part="test"))
    _, dev = dev_split(train, 0.1, seed=13)
    dev_ids = {s.id for s in dev}
    queues = {
        "fold0_train": train,
        "fold0_test": test,
        "fold0_dev": dev,
        "positive": dev + [s for s in train if s.id not in dev_ids] + test,
        "neg_shuffled": in_domain_negatives(shared / "ade_corpus_v2", {s.doc_id for s in test}, seed=0),
    }
    for name, sentences in queues.items():
        write_jsonl(out / f"{name}.jsonl", sentences)
        print(f"{name}: {len(sentences):,} sentences")
    for labels, (queue, committed) in VIEWS.items():
        seeded = [r for f in committed if (LABELS / f).exists()
                  for r in read_unpacked(LABELS / f, queues[queue], unknown="skip")]
        n = write_jsonl(out / labels, seeded)
        print(f"{labels}: {n:,} of {len(queues[queue]):,} labelled so far")
    print(f"-> {out}")


if __name__ == "__main__":
    main()
