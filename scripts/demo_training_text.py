"""Write the demo's extra training text: data/sample/synthetic.jsonl.

The embedded sample has 29 training sentences, too few for a student to learn its teacher's
relations. This script has a local LLM write more ADE case-report sentences with
`ade-distill synthesize` and has the demo's own teacher label them:

1. seeds: drug names (Drugs@FDA single-ingredient products whose ingredient is a DrugBank common
   name, salt words dropped) and reaction names (the mentions of the FDA labels' adverse reactions),
   both from ../shared/data, plus the drug and reaction strings and sentence styles of the teacher's
   labels of the sample's train part (runs/quickstart/label/train.teacher.jsonl: run
   `make demo` first). No gold label and no sample sentence reaches a prompt; kept sentences may
   not nearly copy any sample sentence (train, test or documents).
2. writer: Qwen2.5-Coder-1.5B behind llama.cpp's server (pipelines/teachers/qwen1.5b-llamacpp-lines.yaml;
   `make llama-server` and the 1.5B GGUF, ../shared/NOTES.md). It keeps a sentence only where its
   own re-read finds the pairs it wrote.
3. labels: the demo's teacher (Qwen2.5-Coder-0.5B, pipelines/teachers/qwen0.5b-local.yaml) labels
   every kept sentence; those labels, not the writer's, are what the demo's student learns from.
   `--extra` adds sentences the same writer made before (data/synthetic/: seeded from the teacher's
   labels of ADE-Corpus-V2 train folds 0-2), labelled the same way.

Resumable (both steps go through the teacher cache and resume from their outputs). Usage:
    python scripts/demo_training_text.py [--n 300] [--work runs/demo_synth] [--extra data/synthetic/*.qwen2.5-coder-1.5b.jsonl]
"""
from __future__ import annotations

import argparse
import collections
import csv
import json
import signal
from pathlib import Path

from ade_distill.core.schema import Sentence, read_sentences, write_jsonl
from ade_distill.teacher.synthesis import NearDuplicates
from ade_distill.workflows.synthesize import synthesize
from ade_distill.workflows.teacher import label

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
NEAR_COPY = 0.5  # word 3-gram Jaccard at which a sentence counts as a near-copy (synthesize's default)
SALT_WORDS = {"hydrochloride", "sodium", "potassium", "calcium", "sulfate", "maleate", "mesylate", "tartrate",
              "citrate", "acetate", "besylate", "hydrobromide", "fumarate", "succinate", "phosphate", "bromide",
              "magnesium", "dihydrate", "monohydrate", "hyclate", "disodium", "besilate"}


def drug_names(min_products: int = 3) -> list[str]:
    """Marketed substances: single-ingredient Drugs@FDA products (at least ``min_products``) whose
    ingredient, salt words dropped, is a DrugBank common name."""
    common = {r["Common name"].lower() for r in csv.DictReader(
        open(SHARED / "drugs" / "drugbank_vocabulary.csv", encoding="utf-8"))}
    counts: collections.Counter = collections.Counter()
    with open(SHARED / "drugs" / "fda_products.txt", encoding="latin-1") as f:
        next(f)
        for line in f:
            ingredient = line.rstrip("\n").split("\t")[6]
            if ";" in ingredient:
                continue
            name = " ".join(w for w in ingredient.lower().split() if w not in SALT_WORDS)
            if name in common:
                counts[name] += 1
    return sorted(d for d, n in counts.items() if n >= min_products)


def reaction_names(min_mentions: int = 2) -> list[str]:
    """Reaction mentions of the FDA labels' train file (continuous, at most 40 characters, seen at
    least ``min_mentions`` times), lower-cased unless an acronym."""
    counts: collections.Counter = collections.Counter()
    sections = json.loads((SHARED / "meddra_labels" / "demner-fushman-train-labels.json").read_text(encoding="utf-8"))
    for sec in sections:
        for m in sec["adverse_events"]:
            text = " ".join(m[0].split())
            if "," in str(m[5]) or len(text) > 40:
                continue
            counts[text if text.isupper() else text.lower()] += 1
    return sorted(e for e, n in counts.items() if n >= min_mentions)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: synthesize still records the run's numbers and what it kept


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="sentences to keep")
    ap.add_argument("--work", default="runs/demo_synth")
    ap.add_argument("--corpus", default="runs/quickstart/label/train.teacher.jsonl")
    ap.add_argument("--writer", default="pipelines/teachers/qwen1.5b-llamacpp-lines.yaml")
    ap.add_argument("--labeller", default="pipelines/teachers/qwen0.5b-local.yaml")
    ap.add_argument("--out", default="data/sample/synthetic.jsonl")
    ap.add_argument("--extra", nargs="*", default=[],
                    help="pools of synthetic sentences written before (e.g. data/synthetic/*.jsonl) to label too")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "drugs.txt").write_text("\n".join(drug_names()) + "\n", encoding="utf-8")
    (work / "effects.txt").write_text("\n".join(reaction_names()) + "\n", encoding="utf-8")
    sample = ROOT / "data" / "sample"
    # no kept sentence may nearly copy a sample sentence: the gold ones and the new documents' lines
    exclude = list(read_sentences(sample / "gold.jsonl"))
    exclude += [Sentence(id=f"doc-{p.stem}-{i}", doc_id=p.stem, text=line.strip(), source="unlabeled")
                for p in sorted((sample / "documents").glob("*.txt"))
                for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()) if line.strip()]
    written = work / "written.jsonl"
    r = synthesize(args.corpus, written, args.writer, n=args.n, drugs=[work / "drugs.txt"],
                   effects=[work / "effects.txt"], exclude=exclude, seed=13, near_duplicate=NEAR_COPY,
                   answer="json")  # the answer the committed sample was written with
    print("\n".join(r.lines()))
    kept = list(read_sentences(written))[: args.n]
    dups = NearDuplicates(NEAR_COPY)  # the same near-copy check the writer's sentences passed, for the extras
    for s in exclude:
        dups.add(s.id, s.text)
    for pool in args.extra:  # other sentences the project's writer made; the demo's teacher labels them all
        tag = Path(pool).name.split(".")[0]  # its ids would collide with the new ones
        extra = [s.model_copy(update={"id": f"{tag}-{s.id}", "doc_id": f"{tag}-{s.doc_id}"})
                 for s in read_sentences(pool) if s.source.startswith("synthetic:")]
        near = [s.id for s in extra if dups.nearest(s.text)[0] is not None]
        kept += [s for s in extra if s.id not in near]
        print(f"{pool}: {len(extra) - len(near)} sentences added, {len(near)} near-copies of a sample sentence dropped")
    label([s.model_copy(update={"entities": [], "relations": []}) for s in kept], work / "labelled.jsonl",
          args.labeller)
    by_id = {s.id: s for s in read_sentences(work / "labelled.jsonl")}
    out = []
    for s in kept:
        lab = by_id.get(s.id)
        if lab is None:
            continue  # the labeller failed on it (listed in its failures file)
        meta = dict(s.meta, labels=f"teacher:{lab.source.split(':', 1)[-1]}", writer_labels_dropped=True)
        out.append(s.model_copy(update={"entities": lab.entities, "relations": lab.relations, "meta": meta}))
    write_jsonl(ROOT / args.out, out)
    print(f"{len(out)} sentences -> {args.out} (text by {kept[0].source if kept else '-'}, labels by {args.labeller})")


if __name__ == "__main__":
    main()
