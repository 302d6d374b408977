"""The seed corpus and the exclusion list of issue #34's synthetic sentences, shared by folds 0-2.

  python scripts/prepare_synthetic.py [--folds 0 1 2] [--shared ../shared/data] [--out runs/synth]

One pool of teacher-written sentences serves the first three SpERT folds when nothing of any of
their test parts reaches it:
  corpus.jsonl    the teacher's labels (JSON view, committed, unpacked) of every positive sentence in
                  none of those test parts: the seeds' drugs, reactions and styles (no gold label)
  exclude.jsonl   the text of those test parts (labels dropped): no kept sentence may nearly copy one
Then, in the background (teacher hours; resumable; commit data/synthetic/ in chunks):
  nice ade-distill synthesize --corpus runs/synth/corpus.jsonl --exclude runs/synth/exclude.jsonl \\
      --out data/synthetic/ade_folds012.qwen2.5-coder-1.5b.jsonl --n 1000 \\
      --teacher pipelines/teachers/qwen1.5b-llamacpp-lines.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ade_distill.core.labels import read_unpacked
from ade_distill.core.schema import write_jsonl
from ade_distill.ingest import ingest_ade_splits

REPO = Path(__file__).resolve().parents[1]
LABELS = [REPO / "data" / "teacher_labels" / f"ade_fold0_{p}.qwen2.5-coder-1.5b.jsonl" for p in ("train", "test")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/synth")
    a = ap.parse_args()
    splits = Path(a.shared) / "ade_splits"
    every = list(ingest_ade_splits(splits, fold=0, part="train")) + list(ingest_ade_splits(splits, fold=0, part="test"))
    tests = [s for k in a.folds for s in ingest_ade_splits(splits, fold=k, part="test")]
    test_ids = {s.id for s in tests}
    keep = [s for s in every if s.id not in test_ids]
    labelled = {s.id: s for f in LABELS for s in read_unpacked(f, keep, unknown="skip")}
    corpus = [labelled[s.id] for s in keep if s.id in labelled]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "corpus.jsonl", corpus)
    exclude = {s.id: s.model_copy(update={"entities": [], "relations": [], "source": "unlabeled"}) for s in tests}
    write_jsonl(out / "exclude.jsonl", exclude.values())
    print(f"corpus: {len(corpus):,} teacher-labelled sentences outside the test parts of folds {a.folds} -> "
          f"{out / 'corpus.jsonl'}; exclude: {len(exclude):,} test sentences -> {out / 'exclude.jsonl'}")


if __name__ == "__main__":
    main()
