"""The teacher's labelling queue for issue #12, rebuilt the same way every time.

  python scripts/prepare_labelling.py [--shared ../shared/data] [--out runs/label]

Writes, under --out:
  fold0_train.jsonl          fold 0 train (3,845 sentences), the order the labels are made in
  teacher_fold0_train.jsonl  the committed fold 0 train labels unpacked onto it (the resume point)
  neg_shuffled.jsonl         ADE-NEG sentences from documents with no sentence in fold 0 test,
                             shuffled with seed 0 (in-domain text the benchmark never tests on)
  teacher_neg_lines.jsonl    the committed ADE-NEG labels (lines teacher) unpacked onto it (the resume point)
Then label (resumes where the committed labels stop; --checkpoint-every keeps the file fresh):
  ade-distill label --in runs/label/fold0_train.jsonl --out runs/label/teacher_fold0_train.jsonl \
      --teacher pipelines/teachers/qwen1.5b-llamacpp.yaml --checkpoint-every 20
  ade-distill label --in runs/label/neg_shuffled.jsonl --out runs/label/teacher_neg_lines.jsonl \
      --teacher pipelines/teachers/qwen1.5b-llamacpp-lines.yaml --checkpoint-every 20
and pack for committing: ade-distill labels pack --in ... --out data/teacher_labels/...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ade_distill.ingest import ingest_ade_splits
from ade_distill.ingest.ade_corpus import in_domain_negatives
from ade_distill.labels import read_unpacked
from ade_distill.schema import write_jsonl

REPO = Path(__file__).resolve().parents[1]
TRAIN_LABELS = REPO / "data" / "teacher_labels" / "ade_fold0_train.qwen2.5-coder-1.5b.jsonl"
NEG_LABELS = REPO / "data" / "teacher_labels" / "ade_neg.qwen2.5-coder-1.5b.lines.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/label")
    args = ap.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    train = list(ingest_ade_splits(shared / "ade_splits", fold=0, part="train"))
    test_docs = {s.doc_id for s in ingest_ade_splits(shared / "ade_splits", fold=0, part="test")}
    write_jsonl(out / "fold0_train.jsonl", train)
    n = write_jsonl(out / "teacher_fold0_train.jsonl", read_unpacked(TRAIN_LABELS, train))
    neg = in_domain_negatives(shared / "ade_corpus_v2", test_docs, seed=0)
    write_jsonl(out / "neg_shuffled.jsonl", neg)
    m = write_jsonl(out / "teacher_neg_lines.jsonl", read_unpacked(NEG_LABELS, neg)) if NEG_LABELS.exists() else 0
    print(f"fold 0 train {len(train):,} sentences ({n:,} labelled so far); {len(neg):,} ADE-NEG sentences from "
          f"documents outside fold 0 test ({m:,} labelled so far) -> {out}")


if __name__ == "__main__":
    main()
