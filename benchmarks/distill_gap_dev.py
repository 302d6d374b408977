"""Choose the student-above-teacher levers of issue #30 without gold: train each variant on the
teacher-labelled fold 0 train sentences minus a dev split (whole documents held out), and score
it on that dev split against a *held-out view* of the teacher: the effect-first prompt's labels
(ade-v4-effects), a reading of the dev sentences that no variant trains on. Agreement with an
independent noisy view rises with accuracy when the view's errors are not the student's; agreement
with the labels a variant trained on would reward copying their noise. No gold label and no test
sentence is read.

  python benchmarks/distill_gap_dev.py --variant base --variant views=views:json+lines \\
      [--share 0.1] [--work runs/distill_gap_dev] [--reuse] [--out reports/ade_distill_gap/dev_selection]

A variant is NAME or NAME=key:value[,key:value...]:
  views:json+lines     the teacher views it learns from (json, lines, effects), aggregated when several
  rule, empty_abstains, min_support    AggregateConfig settings (teacher/views.py)
  propagate, min_share, min_marks, min_chars    RepairConfig settings (corpus-level consistency)
  from:VARIANT         a second stage (born again) from an earlier variant, on the same labels
  vs:VARIANT           the variant it is compared with (default: the first)
  any other key        a TrainConfig setting on top of the ade_10fold recipe
Writes NAME.json and NAME.md: each variant's relation and entity strict F1 against the held-out view
(and, for information, against each training view) with 95% bootstrap intervals, and how often each
variant beats the one it is compared with over paired resamples of the dev sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.evaluate import evaluate  # noqa: E402
from ade_distill.evaluate.selection import parse_variant, strict_scores  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.core.labels import read_unpacked  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.core.schema import read_sentences  # noqa: E402
from ade_distill.student import Student  # noqa: E402
from ade_distill.student.distill import CompressConfig, compress_student  # noqa: E402
from ade_distill.teacher.views import AggregateConfig, RepairConfig, combine  # noqa: E402
from ade_distill.workflows import train  # noqa: E402
from ade_distill.workflows.student import dev_split  # noqa: E402

LABELS = REPO / "data" / "teacher_labels"
# each view: committed packed files, then the labelling queue's unpacked file (runs/label), if any
VIEWS = {
    "json": ([LABELS / "ade_fold0_train.qwen2.5-coder-1.5b.jsonl"], REPO / "runs/label/teacher_fold0_train.jsonl"),
    "lines": ([LABELS / "ade_fold0_train.qwen2.5-coder-1.5b.lines.jsonl"],
              REPO / "runs/label/teacher_fold0_train_lines.jsonl"),
    "effects": ([LABELS / "ade_positive.qwen2.5-coder-1.5b.effects.jsonl"],
                REPO / "runs/label/teacher_positive_effects.jsonl"),
}
YARDSTICK = "effects"
PIPELINE = REPO / "pipelines" / "ade_10fold.yaml"
AGG_KEYS = set(AggregateConfig.model_fields)
REPAIR_KEYS = set(RepairConfig.model_fields) - {"labels"}


def load_view(name: str, sentences: list) -> dict:
    """id -> labelled sentence of one view (committed labels, then the queue's newer ones)."""
    packed, unpacked = VIEWS[name]
    out = {}
    for f in packed:
        if f.exists():
            out.update({s.id: s for s in read_unpacked(f, sentences, unknown="skip")})
    if unpacked.exists():
        ids = {s.id for s in sentences}
        out.update({s.id: s for s in read_sentences(unpacked) if s.id in ids})
    return out


def _spec(row: dict) -> str:
    """A row's --variant argument again."""
    st = row["settings"]
    return row["variant"] + ("=" + ",".join(f"{k}:{v}" for k, v in st.items()) if st else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "ade_distill_gap" / "dev_selection")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "distill_gap_dev")
    ap.add_argument("--reuse", action="store_true", help="keep variants already trained in --work with the same settings")
    a = ap.parse_args()
    variants = [parse_variant(v) for v in a.variant]
    recipe = yaml.safe_load(PIPELINE.read_text())["students"]["distilled"]["config"]
    train_part = list(ingest_ade_splits(default_shared_data() / "ade_splits", 0, "train"))
    fit_all, dev = dev_split(train_part, a.share, seed=a.seed)
    dev_ids = {s.id for s in dev}
    views = {name: load_view(name, train_part) for name in VIEWS}
    yard = [views[YARDSTICK][s.id] for s in dev if s.id in views[YARDSTICK]]
    if len(yard) < len(dev):
        raise SystemExit(f"the held-out view ({YARDSTICK}) has labelled {len(yard)} of the {len(dev)} dev sentences")
    t0 = time.monotonic()
    preds, rows = {}, []
    for name, settings in variants:
        out, marker = a.work / name, a.work / name / "variant.json"
        old = json.loads(marker.read_text()) if a.reuse and marker.exists() else None
        if old and old["settings"] == settings:
            row = old
        else:
            s = {k: v for k, v in settings.items() if k != "vs"}
            used = str(s.pop("views", "json")).split("+")
            if YARDSTICK in used:
                raise SystemExit(f"variant {name}: trains on the held-out view {YARDSTICK}")
            agg = AggregateConfig(**{k: s.pop(k) for k in list(s) if k in AGG_KEYS})
            rep = RepairConfig(**{k: s.pop(k) for k in list(s) if k in REPAIR_KEYS})
            fit_views = [[views[v][x.id] for x in fit_all if x.id in views[v]] for v in used]
            fit, stats = combine(fit_views, agg, rep)
            assert not any(x.id in dev_ids for x in fit)
            t1 = time.monotonic()
            if "from" in s:
                src = a.work / s.pop("from")
                depth = json.loads((src / "config.json").read_text())["num_hidden_layers"]
                compress_student(src, fit, CompressConfig(**{"layers": depth, "epochs": recipe["epochs"], **s}), out,
                                 progress=False)
                stats["second_stage_from"] = src.name
            else:
                train(fit, out, None, progress=False, name=name, **{**recipe, **s})
            row = {"variant": name, "settings": settings, "fit_sentences": len(fit), "label_stats": stats,
                   "train_seconds": round(time.monotonic() - t1, 1)}
            marker.write_text(json.dumps(row) + "\n")
        preds[name] = Student.from_pretrained(out, device="cpu").predict(dev)
        rows.append(row)
        print(json.dumps(row), flush=True)
    m = evaluate(yard, preds, n_bootstrap=1000, seed=a.seed)
    info = {v: evaluate([views[v][s.id] for s in dev], preds, n_bootstrap=0) for v in VIEWS if v != YARDSTICK
            and all(s.id in views[v] for s in dev)}
    base = variants[0][0]
    for row in rows:
        row.update(strict_scores(m, row["variant"]))
        row["vs_training_views"] = {v: round(100 * mi["systems"][row["variant"]]["relation"]["strict"]["micro"]["f1"], 2)
                                    for v, mi in info.items()}
        vs = row["settings"].get("vs", base)
        pair = m["paired_bootstrap"].get(f"{vs} vs {row['variant']}")
        if pair:
            row["better_than"] = {"variant": vs, **{k: pair[f"{k}.strict"]["p_b_better"] for k in ("relation", "entity")}}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    result = {"command": "python benchmarks/distill_gap_dev.py " + " ".join(shown(x) for x in sys.argv[1:]), "git_commit": commit,
              "cpus": os.cpu_count(), "recipe": recipe, "dev_sentences": len(dev), "yardstick": YARDSTICK,
              "variants": rows, "paired_bootstrap": m["paired_bootstrap"], "seconds": round(time.monotonic() - t0, 1)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Choosing the levers without gold: agreement with a held-out teacher view on a dev split", "",
             f"Made by `{result['command']}` (git {commit}). Each variant trains on the teacher-labelled fold 0 train "
             f"sentences outside the dev split ({len(dev):,} sentences, whole documents, share {a.share}, seed {a.seed}) and is "
             f"scored on the dev split against the **{YARDSTICK}** view's labels, which no variant trains on (no gold, no "
             "test). Strict F1 with 95% bootstrap intervals; the last column is agreement with the training views, for "
             "information only (it rewards copying them).", "",
             "| variant | settings | relation P / R / F1 (CI) | entity F1 (CI) | beats: relation / entity | kept by the rule | "
             "train s | relation F1 vs training views | reproduce (with the variants it is compared with) |",
             "|---|---|---|---|---|---|---|---|---|"]
    by_name = {r["variant"]: r for r in rows}
    for r in rows:
        rl, en = r["relation"], r["entity"]
        b = r.get("better_than")
        beats = f"{b['variant']}: {b['relation']:.1%} / {b['entity']:.1%}" if b else "-"
        tv = ", ".join(f"{k} {v:.1f}" for k, v in r["vs_training_views"].items())
        kept = "-" if not b else ("yes" if b["relation"] >= 0.9 and en["f1"] >= by_name[b["variant"]]["entity"]["f1"] - 1
                                  else "no")
        chain, name = [], r["variant"]
        while name:  # the variants this row needs: itself, what it is compared with, what it starts from
            chain.append(name)
            st = by_name[name]["settings"]
            name = st.get("from") if st.get("from") in by_name and st.get("from") not in chain else None
        needs = chain
        if b and b["variant"] not in needs:
            needs.append(b["variant"])
        spec = " ".join(f"--variant {_spec(by_name[n])}" for n in reversed(needs))
        lines.append(f"| {r['variant']} | {json.dumps(r['settings']) if r['settings'] else 'the recipe'} | "
                     f"{rl['precision']:.1f} / {rl['recall']:.1f} / {rl['f1']:.1f} ({rl['ci'][0]:.1f}-{rl['ci'][1]:.1f}) | "
                     f"{en['f1']:.1f} ({en['ci'][0]:.1f}-{en['ci'][1]:.1f}) | {beats} | {kept} | {r['train_seconds']:.0f} | "
                     f"{tv} | `python benchmarks/distill_gap_dev.py {spec}` |")
    lines += ["", "\"kept by the rule\": beats the variant it is compared with in at least 90% of paired resamples on "
              "relations, with entity F1 not more than 1 point lower (reports/ade_distill_gap/README.md)."]
    lines += ["", "\"beats\": the share of 1,000 paired bootstrap resamples of the dev sentences in which the variant's "
              f"F1 is higher than the named variant's ({base} unless the settings name another with vs)."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {a.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
