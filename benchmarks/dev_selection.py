"""Choose a student recipe without gold: train each variant on the teacher-labelled fold 0 train
sentences minus a dev split (whole documents held out), and score it against the *teacher's* labels
on that dev split (agreement with the teacher, the only yardstick a distilled student may be chosen
by). No gold label and no test sentence is read.

  python benchmarks/dev_selection.py --variant base --variant context=relation_context:true \
      [--share 0.1] [--epochs 6] [--out reports/ade_benchmark/dev_selection]

A variant is NAME or NAME=key:value[,key:value...]: TrainConfig settings on top of the
ade_benchmark recipe (pipelines/ade_benchmark.yaml, students.distilled.config), and these keys:
  extra:neg        also train on the committed ADE-NEG teacher labels (in-domain sentences with
                   the teacher's labels; those of dev documents are left out)
  from:VARIANT     a second stage instead (pipelines/ade_benchmark.yaml's distilled-again: born
                   again from an earlier variant's model, 6 epochs); other keys are CompressConfig's
  unlabeled:N      with from: the first N ADE-NEG sentences (the labelling queue's order; none of a
                   dev document), labelled by the earlier variant itself, as transfer data
  vs:VARIANT       the variant it is compared with (default: the first)
--reuse keeps a variant already trained in --work with the same settings (its variant.json).
Writes
dev_selection.json and .md: each variant's relation and entity strict F1 against the teacher on
dev, with 95% bootstrap intervals, and how often each variant beats the first one over paired
resamples of the dev sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.evaluate import evaluate  # noqa: E402
from ade_distill.evaluate.selection import parse_variant, strict_scores  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.core.labels import read_unpacked  # noqa: E402
from ade_distill.ingest.ade_corpus import in_domain_negatives  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.student import Student  # noqa: E402
from ade_distill.student.distill import CompressConfig, compress_student  # noqa: E402
from ade_distill.workflows import train  # noqa: E402
from ade_distill.workflows.student import dev_split  # noqa: E402

TRAIN = REPO / "data" / "teacher_labels" / "ade_fold0_train.qwen2.5-coder-1.5b.jsonl"
NEG = REPO / "data" / "teacher_labels" / "ade_neg.qwen2.5-coder-1.5b.lines.jsonl"
PIPELINE = REPO / "pipelines" / "ade_benchmark.yaml"


def train_variant(name: str, settings: dict, fit: list, neg: list, recipe: dict, work: Path) -> dict:
    """Train one variant into work/NAME; returns what was added to the fit sentences."""
    settings = dict(settings)
    out, added = work / name, {}
    if "from" in settings:
        src = work / settings.pop("from")
        n = int(settings.pop("unlabeled", 0))
        depth = json.loads((src / "config.json").read_text())["num_hidden_layers"]
        pipeline = yaml.safe_load(PIPELINE.read_text())["students"]["distilled-again"]["distill"]
        ccfg = CompressConfig(**{"layers": depth, **pipeline, **settings})
        compress_student(src, fit, ccfg, out, unlabeled=neg[:n], progress=False)
        return {"second_stage_from": src.name, "transfer_sentences": min(n, len(neg))}
    if settings.pop("extra", None) == "neg":
        extra = list(read_unpacked(NEG, neg, unknown="skip"))
        fit = fit + extra
        added = {"extra_teacher_labelled": len(extra)}
    train(fit, out, None, progress=False, name=name, **{**recipe, **settings})
    return added


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_benchmark" / "dev_selection")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--reuse", action="store_true", help="keep variants already trained in --work with the same settings")
    a = ap.parse_args()
    variants = [parse_variant(v) for v in a.variant]
    recipe = yaml.safe_load(PIPELINE.read_text())["students"]["distilled"]["config"]
    gold_train = list(ingest_ade_splits(default_shared_data() / "ade_splits", 0, "train"))
    labelled = list(read_unpacked(TRAIN, gold_train, unknown="skip"))  # the teacher's labels only
    fit, dev = dev_split(labelled, a.share, seed=a.seed)
    dev_docs = {s.doc_id for s in dev}
    test_docs = {s.doc_id for s in ingest_ade_splits(default_shared_data() / "ade_splits", 0, "test")}
    neg = [s for s in in_domain_negatives(default_shared_data() / "ade_corpus_v2", test_docs) if s.doc_id not in dev_docs]
    work = a.work or Path(tempfile.mkdtemp(prefix="ade-devsel-"))
    t0 = time.monotonic()
    preds, rows = {}, []
    for name, settings in variants:
        out, marker = work / name, work / name / "variant.json"
        old = json.loads(marker.read_text()) if a.reuse and marker.exists() else None
        if old and old["settings"] == settings:
            row = old
        else:
            t1 = time.monotonic()
            added = train_variant(name, {k: v for k, v in settings.items() if k != "vs"}, fit, neg, recipe, work)
            row = {"variant": name, "settings": settings, "train_seconds": round(time.monotonic() - t1, 1), **added}
            marker.write_text(json.dumps(row) + "\n")
        for made in (out / "training.json", out / "compress.json"):  # a drug-conditioned student's copies
            copies = json.loads(made.read_text()).get("marked_copies") if made.exists() else None
            if copies:
                row["marked_copies"] = copies
        preds[name] = Student.from_pretrained(out, device="cpu").predict(dev)
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)
    m = evaluate(dev, preds, n_bootstrap=1000, seed=a.seed)
    base = variants[0][0]
    for row in rows:
        row.update(strict_scores(m, row["variant"]))
        vs = row["settings"].get("vs", base)
        pair = m["paired_bootstrap"].get(f"{vs} vs {row['variant']}")
        if pair:  # share of paired dev resamples in which this variant beats the one it is compared with
            row["better_than"] = {"variant": vs, **{kind: pair[f"{kind}.strict"]["p_b_better"] for kind in ("relation", "entity")}}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = {"command": "python benchmarks/dev_selection.py " + " ".join(sys.argv[1:]), "git_commit": commit,
              "cpus": os.cpu_count(), "recipe": recipe, "fit_sentences": len(fit), "dev_sentences": len(dev),
              "yardstick": "the teacher's labels on the dev split (no gold)", "variants": rows,
              "paired_bootstrap": m["paired_bootstrap"], "seconds": round(time.monotonic() - t0, 1)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Choosing a recipe without gold: agreement with the teacher on a dev split", "",
             f"Made by `{result['command']}` (git {commit}). {len(fit):,} teacher-labelled fold 0 train sentences "
             f"train each variant; {len(dev):,} held out (whole documents) are the dev split, scored against the "
             "teacher's own labels (no gold, no test). Strict F1 with 95% bootstrap intervals.", "",
             "| variant | settings | relation P / R / F1 (CI) | entity F1 (CI) | beats: relation / entity | train s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        rl, en = r["relation"], r["entity"]
        b = r.get("better_than")
        beats = f"{b['variant']}: {b['relation']:.1%} / {b['entity']:.1%}" if b else "-"
        lines.append(f"| {r['variant']} | {json.dumps(r['settings']) if r['settings'] else 'the recipe'} | "
                     f"{rl['precision']:.1f} / {rl['recall']:.1f} / {rl['f1']:.1f} ({rl['ci'][0]:.1f}-{rl['ci'][1]:.1f}) | "
                     f"{en['f1']:.1f} ({en['ci'][0]:.1f}-{en['ci'][1]:.1f}) | {beats} | {r['train_seconds']:.0f} |")
    lines += ["", "\"beats\": the share of 1,000 paired bootstrap resamples of the dev sentences in which the variant's "
              f"F1 is higher than the named variant's ({base} unless the settings name another with vs)."]
    extra = [f"{r['variant']}: {r['extra_teacher_labelled']:,} ADE-NEG sentences with teacher labels added" for r in rows
             if r.get("extra_teacher_labelled") is not None]
    extra += [f"{r['variant']}: second stage from {r['second_stage_from']}, {r['transfer_sentences']:,} ADE-NEG sentences "
              "as transfer data" for r in rows if r.get("second_stage_from")]
    extra += [f"{r['variant']}: {r['marked_copies']:,} marked copies (one per teacher-labelled drug) beside the "
              f"{len(fit):,} sentences" for r in rows if r.get("marked_copies")]
    if extra:
        lines += [""] + [f"- {x}" for x in extra]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
