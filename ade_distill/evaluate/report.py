"""metrics.json (+ optionally gold and predictions) -> report.html, report.md, metrics.json.

The HTML is one self-contained file (CSS inline, charts as embedded PNG) that a
pharmacovigilance team can mail around; ``excerpts=False`` keeps every piece of
sentence text out of it, for data that must not leave the building.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import random
from pathlib import Path
from typing import Mapping, Sequence

from ..core.schema import LABELS, Entity, Sentence, atomic_open
from .metrics import EvaluationError, align, error_examples, gold_ids_sha

N_EXAMPLES = 8
N_MISSED = 10


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _f1_ci(block: Mapping) -> str:
    m = block["micro"] if "micro" in block else block
    ci = m.get("ci")
    return f"{_pct(m['f1'])} [{_pct(ci[0])}–{_pct(ci[1])}]" if ci else _pct(m["f1"])


def _params(n) -> str:
    if n is None:
        return "–"
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return str(n)


def _fig_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _bar_chart(metrics: Mapping) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(metrics["systems"])
    panels = [("entity", "strict", "Entity F1 (strict)"), ("relation", "strict", "Relation F1 (strict)"),
              ("relation", "lenient", "Relation F1 (lenient)"), ("relation", "text", "Relation F1 (text)")]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.6 * len(names) + 4), 3.6))
    width = 0.8 / len(names)
    x = np.arange(len(panels))
    colors = plt.get_cmap("tab10").colors
    for i, name in enumerate(names):
        vals, lo, hi = [], [], []
        for kind, mode, _ in panels:
            m = metrics["systems"][name][kind][mode]["micro"]
            vals.append(100 * m["f1"])
            ci = m.get("ci", [m["f1"], m["f1"]])
            lo.append(100 * (m["f1"] - ci[0]))
            hi.append(100 * (ci[1] - m["f1"]))
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, yerr=[lo, hi], capsize=3,
               label=name, color=colors[i % 10])
    ax.set_xticks(x, [p[2] for p in panels])
    ax.set_ylim(0, 100)
    ax.set_ylabel("F1 (%), 95% bootstrap CI")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(len(names), 4), frameon=False)
    return _fig_png(fig)


def _plural(kind: str) -> str:
    return {"entity": "entities", "relation": "relations"}[kind]


def _calibration_chart(metrics: Mapping) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_cal = [(n, s["calibration"]) for n, s in metrics["systems"].items() if s.get("calibration")]
    if not with_cal:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = plt.get_cmap("tab10").colors
    ax = axes[0]
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    for i, (name, cal) in enumerate(with_cal):
        for kind, marker in (("relation", "o"), ("entity", "s")):
            if kind in cal:
                b = cal[kind]["bins"]
                ax.plot([x["confidence"] for x in b], [x["accuracy"] for x in b], marker=marker,
                        color=colors[i % 10], alpha=0.9 if kind == "relation" else 0.5,
                        label=f"{name} {_plural(kind)} (ECE {cal[kind]['ece']:.3f})")
    ax.set(xlabel="confidence", ylabel="share correct (strict)", xlim=(0, 1), ylim=(0, 1.02),
           title="Reliability diagram")
    ax.legend(fontsize=7)
    ax = axes[1]
    for i, (name, cal) in enumerate(with_cal):
        for kind, ls in (("relation", "-"), ("entity", ":")):
            if kind in cal:
                c = cal[kind]["pr_curve"]
                ax.plot([p["recall"] for p in c], [p["precision"] for p in c], ls=ls, marker=".",
                        color=colors[i % 10], label=f"{name} {_plural(kind)}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title="Precision-recall over confidence thresholds")
    ax.legend(fontsize=7)
    return _fig_png(fig)


def _highlight(text: str, spans: Sequence[tuple[Entity, str]]) -> str:
    """HTML of ``text`` with each (entity, css class) span marked; nested spans are skipped."""
    out, pos = [], 0
    for ent, cls in sorted(spans, key=lambda t: (t[0].start, -t[0].end)):
        if ent.start < pos:
            continue
        out.append(html.escape(text[pos:ent.start]))
        out.append(f'<mark class="{cls}" title="{ent.label}">{html.escape(text[ent.start:ent.end])}'
                   f'<sub>{ent.label}</sub></mark>')
        pos = ent.end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _examples(gold: Sequence[Sentence], preds: Mapping[str, Sequence[Sentence]], seed: int) -> dict:
    out = {}
    for name, pred in preds.items():
        err = error_examples(gold, pred)
        rng = random.Random(seed)
        fps = rng.sample(err["false_positives"], min(N_EXAMPLES, len(err["false_positives"])))
        fns = rng.sample(err["false_negatives"], min(N_EXAMPLES, len(err["false_negatives"])))
        out[name] = {"fp": fps, "fn": fns, "n_fp": len(err["false_positives"]),
                     "n_fn": len(err["false_negatives"]),
                     "missed": {lab: err["missed"][lab].most_common(N_MISSED) for lab in LABELS}}
    return out


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2430;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #e3e8ef;padding-bottom:.3rem;margin-top:2.2rem}
.sub{color:#5b6575;margin-top:0}table{border-collapse:collapse;margin:.8rem 0;font-size:.92rem}
th,td{border:1px solid #d8dee8;padding:.35rem .6rem;text-align:right}th{background:#f2f5f9}
td:first-child,th:first-child{text-align:left}.best{font-weight:700;background:#eaf6ea}
.note{background:#f7f9fc;border-left:4px solid #7aa2d6;padding:.6rem .9rem;font-size:.9rem}
mark{border-radius:3px;padding:0 2px}mark sub{font-size:.6rem;margin-left:2px;color:#333}
mark.fp{background:#ffd7d5}mark.fn{background:#ffe9a8}mark.gold{background:#d7ecff}
.ex{margin:.35rem 0;padding:.35rem .5rem;border:1px solid #eef1f5;border-radius:4px;font-size:.9rem}
.ex .id{color:#7b8494;font-size:.75rem;margin-right:.5rem}img{max-width:100%}
.cols{display:flex;gap:2rem;flex-wrap:wrap}.cols>div{flex:1;min-width:300px}
"""


def _headline_rows(metrics: Mapping) -> list[list[str]]:
    rows = []
    for name, s in metrics["systems"].items():
        info = s.get("info", {})
        rows.append([name, _params(info.get("parameters")), _f1_ci(s["entity"]["strict"]),
                     _f1_ci(s["relation"]["strict"]), _f1_ci(s["relation"]["lenient"]),
                     _f1_ci(s["relation"]["text"]),
                     f"{info['sentences_per_second']:.1f}" if info.get("sentences_per_second") else "–",
                     f"${info['cost_usd_per_1k_sentences']:.4f}" if info.get("cost_usd_per_1k_sentences") is not None else "–"])
    return rows


HEADLINE = ["System", "Parameters", "Entity F1 strict", "Relation F1 strict", "Relation F1 lenient",
            "Relation F1 text", "Sentences/s", "Cost / 1k sentences"]


def _label_rows(metrics: Mapping) -> list[list[str]]:
    rows = []
    for name, s in metrics["systems"].items():
        for mode in ("strict", "lenient", "seqeval"):
            if mode not in s["entity"]:
                continue
            row = [name if mode == "strict" else "", mode]
            for lab in LABELS:
                m = s["entity"][mode]["by_label"][lab]
                row += [_pct(m["precision"]), _pct(m["recall"]), _pct(m["f1"])]
            rows.append(row)
    return rows


LABEL_HEAD = ["System", "Match", "DRUG P", "DRUG R", "DRUG F1", "ADE P", "ADE R", "ADE F1"]


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]], best_cols: Sequence[int] = ()) -> str:
    best = {}
    for c in best_cols:
        vals = [float(r[c].split()[0]) for r in rows if r[c] not in ("–", "")]
        best[c] = max(vals) if vals else None
    out = ["<table><thead><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>")
        for i, v in enumerate(r):
            cls = ' class="best"' if i in best and best[i] is not None and v not in ("–", "") \
                and float(v.split()[0]) == best[i] and len(rows) > 1 else ""
            out.append(f"<td{cls}>{html.escape(v)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _pair_rows(metrics: Mapping) -> list[list[str]]:
    rows = []
    for pair, d in metrics.get("paired_bootstrap", {}).items():
        agree = metrics.get("agreement", {}).get(pair, {})
        rows.append([pair, f"{100 * d['relation.strict']['delta_f1']:+.1f}",
                     f"{d['relation.strict']['p_a_better']:.3f}",
                     f"{100 * d['entity.strict']['delta_f1']:+.1f}", f"{d['entity.strict']['p_a_better']:.3f}",
                     _pct(agree.get("relation_strict_f1")), _pct(agree.get("entity_strict_f1"))])
    return rows


PAIR_HEAD = ["A vs B", "Δ relation F1 (A−B)", "P(A better), relation", "Δ entity F1", "P(A better), entity",
             "Agreement: relation F1 of B against A", "Agreement: entity F1"]


def check_metrics(metrics) -> None:
    """Raise EvaluationError unless ``metrics`` has the shape `evaluate` writes."""
    def bad(why: str):
        return EvaluationError(f"not a metrics file from `ade-distill evaluate`: {why}")

    if not isinstance(metrics, dict) or not isinstance(metrics.get("n_sentences"), int):
        raise bad("no sentence count")
    systems = metrics.get("systems")
    if not isinstance(systems, dict) or not systems:
        raise bad("no systems")
    for name, s in systems.items():
        try:
            for kind, modes in (("entity", ("strict", "lenient")), ("relation", ("strict", "lenient", "text"))):
                for mode in modes:
                    micro = s[kind][mode]["micro"]
                    for k in ("precision", "recall", "f1"):
                        float(micro[k])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"system {name!r} lacks {kind}.{mode} scores ({exc!r})") from None


def write_report(metrics: Mapping, out_dir: str | Path, *, gold: Sequence[Sentence] | None = None,
                 preds: Mapping[str, Sequence[Sentence]] | None = None, excerpts: bool = True,
                 title: str = "Adverse drug event extraction: evaluation report",
                 command: str | None = None, seed: int = 13) -> dict[str, Path]:
    """Write report.html, report.md and metrics.json into ``out_dir``; return their paths.

    With ``gold`` and ``preds`` the report adds an error analysis (sampled false positives
    and negatives, most often missed strings); ``excerpts=False`` leaves all sentence text
    (and span strings) out.
    """
    if command:
        from ..core.paths import shown_text

        command = shown_text(command)
    check_metrics(metrics)
    if gold is not None:
        gold = list(gold)
        n_gold, want = len(gold), metrics["n_sentences"]
        sha = metrics.get("gold_ids_sha")
        if n_gold != want or (sha is not None and sha != gold_ids_sha(gold)):
            raise EvaluationError(f"the gold sentences given ({n_gold:,}) are not the ones these metrics were "
                                  f"computed on ({want:,} sentences{', other ids' if n_gold == want else ''}); "
                                  "pass the gold file given to `evaluate`")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n = metrics["n_sentences"]
    boot = metrics.get("bootstrap", {})
    headline = _headline_rows(metrics)
    labels = _label_rows(metrics)
    pairs = _pair_rows(metrics)
    examples = None
    if gold is not None and preds:
        aligned = {name: align(gold, p, name, allow_missing=True)[0] for name, p in preds.items()}
        examples = _examples(gold, aligned, seed)
    missing = {k: s.get("n_missing", 0) for k, s in metrics["systems"].items() if s.get("n_missing")}
    made = {k: s["info"]["made"] for k, s in metrics["systems"].items() if s.get("info", {}).get("made")}

    # ---------- HTML ----------
    h = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
         f"<style>{CSS}</style></head><body>",
         f"<h1>{html.escape(title)}</h1>",
         f"<p class='sub'>{n:,} gold sentences · {len(metrics['systems'])} systems · generated {when}</p>",
         "<div class='note'>Strict: same label and exact character span; lenient: same label and "
         "overlapping spans (one-to-one); relation strict/lenient: both the drug and the adverse "
         "effect match; relation text: (drug, effect) strings compared case- and whitespace-insensitively "
         "per sentence, the usual way to score LLM output. Brackets: "
         f"{int(100 * boot.get('confidence', 0.95))}% bootstrap interval over sentences "
         f"({boot.get('resamples', 0):,} resamples, seed {boot.get('seed', '–')}).</div>"]
    if missing:
        h.append("<p class='note'>Sentences without a prediction, counted as predicting nothing: "
                 + ", ".join(f"{html.escape(k)} {v:,}" for k, v in missing.items()) + "</p>")
    h += ["<h2>Headline</h2>", _html_table(HEADLINE, headline, best_cols=(2, 3, 4, 5)),
          f"<img alt='F1 by system with 95% intervals' src='data:image/png;base64,{_bar_chart(metrics)}'>",
          *([("<h2>How each system was made</h2><ul>" + "".join(
              f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in made.items()) + "</ul>")] if made else []),
          "<h2>By label</h2>", _html_table(LABEL_HEAD, labels),
          "<p class='sub'>seqeval: token-level IOB2 scoring of the same spans, a cross-check of the span scorer.</p>"]
    if pairs:
        h += ["<h2>System against system</h2>", _html_table(PAIR_HEAD, pairs),
              "<p class='sub'>P(A better): share of paired bootstrap resamples (same sentences for both) "
              "in which A's F1 is higher. Agreement: B scored as if A were the gold standard.</p>"]
    cal = _calibration_chart(metrics)
    if cal:
        h += ["<h2>Confidence</h2>", f"<img alt='reliability and precision-recall' src='data:image/png;base64,{cal}'>",
              "<p class='sub'>ECE: expected calibration error (10 bins). Correct = strict match with gold.</p>"]
    if examples is not None:
        h.append("<h2>Error analysis</h2>")
        for name, ex in examples.items():
            h.append(f"<h3>{html.escape(name)}</h3><p>{ex['n_fp']:,} false-positive and {ex['n_fn']:,} "
                     "false-negative entities (strict).</p>")
            if not excerpts:
                continue
            h.append("<div class='cols'>")
            for lab in LABELS:
                items = "".join(f"<tr><td>{html.escape(t)}</td><td>{c}</td></tr>" for t, c in ex["missed"][lab])
                h.append(f"<div><b>Most often missed {lab}</b><table><tr><th>text</th><th>missed</th></tr>"
                         f"{items or '<tr><td>none</td><td></td></tr>'}</table></div>")
            h.append("</div><div class='cols'>")
            for key, cls, head in (("fp", "fp", "Sampled false positives"), ("fn", "fn", "Sampled false negatives")):
                h.append(f"<div><b>{head}</b>")
                if not ex[key]:
                    h.append("<p>none</p>")
                for sent, ent in ex[key]:
                    golds = [(e, "gold") for e in sent.entities if e is not ent and not (
                        e.start < ent.end and ent.start < e.end)]
                    h.append(f"<div class='ex'><span class='id'>{html.escape(sent.id)}</span>"
                             f"{_highlight(sent.text, golds + [(ent, cls)])}</div>")
                h.append("</div>")
            h.append("</div>")
        if excerpts:
            h.append("<p class='sub'>Marks: <mark class='fp'>false positive</mark> "
                     "<mark class='fn'>missed gold span</mark> <mark class='gold'>other gold span</mark></p>")
        else:
            h.append("<p class='note'>Excerpts were left out of this report (--no-excerpts).</p>")
    if command:
        h.append(f"<h2>Reproduce</h2><pre>{html.escape(command)}</pre>")
    h.append("</body></html>")

    # ---------- Markdown ----------
    md = [f"# {title}", "", f"{n:,} gold sentences, {len(metrics['systems'])} systems, generated {when}.", "",
          "## Headline", "", _md_table(HEADLINE, headline), "",
          f"F1 in %, [{int(100 * boot.get('confidence', 0.95))}% bootstrap interval over sentences, "
          f"{boot.get('resamples', 0):,} resamples].", ""]
    if made:
        md += ["## How each system was made", ""] + [f"- **{k}**: {v}" for k, v in made.items()] + [""]
    md += ["## By label", "", _md_table(LABEL_HEAD, labels), ""]
    if pairs:
        md += ["## System against system", "", _md_table(PAIR_HEAD, pairs), ""]
    if examples is not None:
        md += ["## Error analysis", ""]
        for name, ex in examples.items():
            md += [f"### {name}", "", f"{ex['n_fp']:,} false-positive and {ex['n_fn']:,} false-negative entities (strict).", ""]
            if excerpts:
                for lab in LABELS:
                    md.append(f"Most often missed {lab}: "
                              + (", ".join(f"{html.escape(t)} ({c})" for t, c in ex["missed"][lab]) or "none"))
                md.append("")
                for key, head in (("fp", "False positives"), ("fn", "False negatives")):
                    md.append(f"{head} (sample):")
                    for sent, ent in ex[key]:
                        t = sent.text
                        # sentence text is data: escaped, so markup in it shows as text
                        esc = html.escape
                        md.append(f"- `{sent.id}` {esc(t[:ent.start])}**[{esc(t[ent.start:ent.end])}]({ent.label})**"
                                  f"{esc(t[ent.end:])}")
                    md.append("")
    if command:
        md += ["## Reproduce", "", "```", command, "```", ""]

    paths = {"html": out_dir / "report.html", "md": out_dir / "report.md", "metrics": out_dir / "metrics.json"}
    with atomic_open(paths["html"]) as fh:
        fh.write("".join(h))
    with atomic_open(paths["md"]) as fh:
        fh.write("\n".join(md) + "\n")
    with atomic_open(paths["metrics"]) as fh:
        from ..core.paths import shown_text

        fh.write(shown_text(json.dumps(metrics, indent=2)))
        fh.write("\n")
    return paths
