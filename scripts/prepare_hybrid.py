"""The k-shot teacher's labelling queue for pipelines/ade_hybrid.yaml, so its labels can be made in the
background, committed (packed, no text) and seeded into the pipeline.

  python scripts/prepare_hybrid.py [--folds 0 1 2] [--ks 25 50 100 200] [--out runs/hybrid]

For each fold f and budget k, writes under --out:
  fold{f}_test.jsonl           the fold's test sentences (the k-shot view labels the test part only)
  fold{f}_gold{k}.jsonl        the first k gold train sentences in the pipeline's gold order (gold_seed 13:
                               the same function and seed as the pipeline, so the prompts are identical)
  teacher_f{f}_k{k}.yaml       the lines teacher with those k sentences as its shots, 4 retrieved per input
and prints the commands (each resumable):
  nice ade-distill label --in runs/hybrid/fold{f}_test.jsonl --out runs/hybrid/kshot_f{f}_k{k}.jsonl \\
      --teacher runs/hybrid/teacher_f{f}_k{k}.yaml --checkpoint-every 20
  ade-distill labels pack --in runs/hybrid/kshot_f{f}_k{k}.jsonl \\
      --out data/teacher_labels/hybrid/ade_fold{f}_test.kshot{k}.lines.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from ade_distill.core.schema import write_jsonl
from ade_distill.ingest import ingest_ade_splits
from ade_distill.workflows.student import gold_budget

REPO = Path(__file__).resolve().parents[1]
TEACHER = REPO / "pipelines" / "teachers" / "qwen1.5b-llamacpp-lines.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ks", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/hybrid")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(TEACHER.read_text())
    for f in a.folds:
        splits = Path(a.shared) / "ade_splits"
        write_jsonl(out / f"fold{f}_test.jsonl", ingest_ade_splits(splits, fold=f, part="test"))
        train = list(ingest_ade_splits(splits, fold=f, part="train"))
        for k in a.ks:
            shots = out / f"fold{f}_gold{k}.jsonl"
            write_jsonl(shots, gold_budget(train, k, a.seed))
            cfg = {**base, "prompt": {**base.get("prompt", {}), "shots": str(shots.resolve()), "retrieve": 4}}
            (out / f"teacher_f{f}_k{k}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
            print(f"nice -n 5 ade-distill label --in {out}/fold{f}_test.jsonl --out {out}/kshot_f{f}_k{k}.jsonl "
                  f"--teacher {out}/teacher_f{f}_k{k}.yaml --checkpoint-every 20")


if __name__ == "__main__":
    main()
