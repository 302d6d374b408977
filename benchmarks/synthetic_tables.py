"""Issue #34's synthetic-data tables from a finished `ade-distill run pipelines/ade_synthetic.yaml`:
the N-curve (relation and entity strict F1 per fold, mean, 95% bootstrap intervals), the
**rare-drug slice** (test relations whose drug string occurs at most twice in the text of the
fold's train part: where teacher-written sentences about rare drugs should help), and the pool's
diversity, overlap and teacher hours from its run record.

  python benchmarks/synthetic_tables.py [--report reports/synthetic] [--pool data/synthetic/...jsonl]

Slice scoring: gold relations in the slice against predicted relations whose drug string is rare by
the same rule (strict spans), micro over the three folds' test parts; intervals from 1,000 bootstrap
resamples of the test sentences. Writes <report>/synthetic.md and synthetic.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POOL = REPO / "data" / "synthetic" / "ade_folds012.qwen2.5-coder-1.5b.jsonl"


def word_counts(texts) -> Counter:
    c: Counter = Counter()
    for t in texts:
        c.update(re.findall(r"\w[\w-]*", t.lower()))
    return c


def occurrences(drug: str, counts: Counter, bigrams: dict, texts_lower: list[str]) -> int:
    """How often a drug string occurs in the train text (word counts for one word, substring
    counts for longer names)."""
    d = drug.lower().strip()
    if re.fullmatch(r"\w[\w-]*", d):
        return counts.get(d, 0)
    if d not in bigrams:
        bigrams[d] = sum(t.count(d) for t in texts_lower)
    return bigrams[d]


def slice_counts(gold, pred, rare) -> list[tuple[int, int, int]]:
    """(tp, fp, fn) per sentence on the rare-drug slice."""
    out = []
    for g, p in zip(gold, pred):
        gr = {((e := g.entity(r.drug)).start, e.end, g.entity(r.ade).start, g.entity(r.ade).end)
              for r in g.relations if rare(g.entity(r.drug).text)}
        pr = {((e := p.entity(r.drug)).start, e.end, p.entity(r.ade).start, p.entity(r.ade).end)
              for r in p.relations if rare(p.entity(r.drug).text)}
        out.append((len(gr & pr), len(pr - gr), len(gr - pr)))
    return out


def f1(rows) -> float:
    tp, fp, fn = (sum(x[i] for x in rows) for i in range(3))
    return 200 * tp / (2 * tp + fp + fn) if tp else 0.0


def main() -> None:
    from ade_distill.core.labels import read_unpacked
    from ade_distill.ingest import ingest_ade_splits
    from ade_distill.pipeline import default_shared_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", type=Path, default=REPO / "reports" / "synthetic")
    ap.add_argument("--pool", type=Path, default=POOL)
    ap.add_argument("--max-count", type=int, default=2)
    a = ap.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    run = pool_record(a.pool)
    # the pool's state, every time (it grows between student runs)
    lines = ["# The pool of teacher-written sentences (issue #34)", "",
             f"Made by `python benchmarks/synthetic_tables.py` (git {commit}) from {a.pool.relative_to(REPO)} and "
             "its run record" + ("; no student has been trained on it yet." if not (a.report / "folds.json").exists()
                                 else "; the students trained on its first sentences: synthetic.md.")]
    lines += pool_lines(a.pool, run)
    (a.report / "pool.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not (a.report / "folds.json").exists():  # no student run yet: the pool's state alone
        return
    folds = json.loads((a.report / "folds.json").read_text())
    students = [n.removeprefix("student ") for n in folds["systems"] if n.startswith("student ")]
    splits = default_shared_data() / "ade_splits"
    per_student: dict[str, list] = {s: [] for s in students}
    all_rel: dict[str, list] = {s: [] for s in students}  # every test relation, for the pooled interval
    slice_gold = 0
    for k in folds["folds"]:
        train_texts = [s.text.lower() for s in ingest_ade_splits(splits, fold=k, part="train")]
        counts, longer = word_counts(train_texts), {}
        test = list(ingest_ade_splits(splits, fold=k, part="test"))

        def rare(drug: str) -> bool:
            return occurrences(drug, counts, longer, train_texts) <= a.max_count

        slice_gold += sum(rare(s.entity(r.drug).text) for s in test for r in s.relations)
        for st in students:
            preds = {p.id: p for p in read_unpacked(a.report / "oof" / f"{st}.packed.jsonl", test, unknown="skip")}
            per_student[st] += slice_counts(test, [preds[s.id] for s in test], rare)
            all_rel[st] += slice_counts(test, [preds[s.id] for s in test], lambda _: True)
    rng = random.Random(13)
    n = len(next(iter(per_student.values())))
    draws = [[rng.randrange(n) for _ in range(n)] for _ in range(1000)]
    rows = []
    first = students[0]  # the student without synthetic sentences, by the pipeline's order

    def paired(st: str, counts: dict) -> float:
        """Share of the resamples in which ``st`` scores above the first student."""
        return sum(f1([counts[st][i] for i in d]) > f1([counts[first][i] for i in d]) for d in draws) / len(draws)

    for st in students:
        sysm = folds["systems"][f"student {st}"]
        cs, ca = per_student[st], all_rel[st]
        boots = sorted(f1([cs[i] for i in d]) for d in draws)
        pooled = sorted(f1([ca[i] for i in d]) for d in draws)
        rows.append({"student": st, "relation_per_fold": sysm["relation strict"]["per_fold"],
                     "relation_mean": sysm["relation strict"]["mean"], "relation_sd": sysm["relation strict"]["sd"],
                     "relation_pooled": f1(ca), "relation_pooled_ci": [pooled[25], pooled[974]],
                     "relation_above_first": None if st == first else paired(st, all_rel),
                     "entity_mean": sysm["entity strict"]["mean"], "rare_slice_f1": f1(cs),
                     "rare_slice_ci": [boots[25], boots[974]],
                     "rare_slice_above_first": None if st == first else paired(st, per_student)})
    lines = [f"# Teacher-written sentences: the N-curve and the rare-drug slice (folds {', '.join(map(str, folds['folds']))})",
             "", f"Made by `python benchmarks/synthetic_tables.py` (git {commit}) from `ade-distill run "
             "pipelines/ade_synthetic.yaml` (reports/synthetic/folds.md). Strict F1 on each fold's test part.", "",
             f"| student | relation F1 per fold | mean ± sd | pooled relation F1 (95% CI) | above {first} | "
             f"entity F1 mean | rare-drug slice relation F1 (95% CI) | slice above {first} |",
             "|---|---|---|---|---|---|---|---|"]

    def share(x) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    for r in rows:
        lines.append(f"| {r['student']} | {', '.join(f'{x:.1f}' for x in r['relation_per_fold'])} | "
                     f"{r['relation_mean']:.1f} ± {r['relation_sd']:.1f} | {r['relation_pooled']:.1f} "
                     f"({r['relation_pooled_ci'][0]:.1f}-{r['relation_pooled_ci'][1]:.1f}) | "
                     f"{share(r['relation_above_first'])} | {r['entity_mean']:.1f} | "
                     f"{r['rare_slice_f1']:.1f} ({r['rare_slice_ci'][0]:.1f}-{r['rare_slice_ci'][1]:.1f}) | "
                     f"{share(r['rare_slice_above_first'])} |")
    lines += ["", f"Pooled: strict relation F1 over the test parts of all {len(folds['folds'])} folds together, with the "
                  "2.5th and 97.5th percentiles of 1,000 bootstrap resamples of the test sentences; \"above\": the share "
                  f"of those paired resamples in which the student scores above {first}."]
    lines += ["", f"Rare-drug slice: {slice_gold:,} gold test relations over the folds whose drug string occurs at most "
                  f"{a.max_count} times in the fold's train text."]
    lines += pool_lines(a.pool, run)
    (a.report / "synthetic.md").write_text("\n".join(lines) + "\n")
    (a.report / "synthetic.json").write_text(json.dumps({"students": rows, "rare_slice_gold": slice_gold,
                                                         "pool": run.get("diversity"), "git": commit}, indent=2) + "\n")
    print("\n".join(lines))


def pool_record(pool: Path) -> dict:
    """The pool's run record (<pool>.run.json, written by ade-distill synthesize), or {} without one."""
    path = pool.with_name(pool.name.removesuffix(".jsonl") + ".run.json")
    return json.loads(path.read_text()) if path.exists() else {}


def pool_lines(pool: Path, run: dict) -> list[str]:
    """The pool's section: kept and tried, why the rest was dropped, teacher hours, diversity, prompts."""
    lines: list[str] = []
    if run:
        d, st = run["diversity"], run["stats"]
        lines += ["", "## The pool", "",
                  f"{st['total_kept']:,} sentences kept of {st['total_kept'] + sum(st['rejected'].values()):,} tried; "
                  "dropped: " + "; ".join(f"{k} {v:,}" for k, v in sorted(st["rejected"].items(), key=lambda x: -x[1]))
                  + f". Teacher time {run['teacher_hours_total']:.2f} h.",
                  f"Diversity: {d['distinct_drugs']:,} distinct drugs, {d['distinct_effects']:,} distinct effects; "
                  f"distinct-1/2/3 {d['distinct_1']}/{d['distinct_2']}/{d['distinct_3']}; word 3-grams also in the seed "
                  f"corpus {d.get('trigram_overlap_with_corpus')}; most common openings {d.get('top_openings')}."]
        by_prompt = Counter(json.loads(x)["meta"].get("prompt_version") for x in pool.read_text().splitlines()
                            if x.strip())
        lines.append("Kept by generation prompt: " + "; ".join(f"{k} {v:,}" for k, v in sorted(by_prompt.items()))
                     + " (reports/synthetic/answer_ab.md compares them).")
    return lines


if __name__ == "__main__":
    main()
