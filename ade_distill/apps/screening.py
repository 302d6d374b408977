"""Literature screening: drugs of interest, the article-level ADE table and the screening report.

One row per (article, drug, adverse effect) pair the student found, with the evidence sentence,
document offsets, confidence, and the model id and version; ``drug_of_interest`` names the
listed drug the mention matches (case-insensitive, whole words, any synonym). The report ranks
articles by their strongest ADE signal, highlights drugs of interest, counts drug x effect pairs
and marks what is new since the previous run.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..core.errors import InputError
from ..core.io import records_of
from ..core.schema import Document, Sentence

COLUMNS = ["pmid", "title", "journal", "year", "drug", "effect", "drug_of_interest", "confidence",
           "drug_confidence", "effect_confidence", "sentence_id", "evidence", "sentence_start", "drug_start", "drug_end",
           "effect_start", "effect_end", "substance", "meddra_pt_code", "meddra_pt", "meddra_soc", "assertion",
           "model", "run"]


@dataclass
class DrugList:
    """Drugs of interest: a canonical name and its synonyms (brand names, salts, codes)."""

    names: dict[str, list[str]]

    @classmethod
    def parse(cls, spec: Sequence[str] | str | Path | None) -> "DrugList":
        """From names (``["methotrexate", "MTX"]`` are two drugs) or a file, one drug per line:
        ``name; synonym; synonym`` (``#`` starts a comment)."""
        if spec is None:
            return cls({})
        if isinstance(spec, (str, Path)) and Path(spec).is_file():
            names: dict[str, list[str]] = {}
            for k, line in enumerate(Path(spec).read_text(encoding="utf-8").splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = [p.strip() for p in re.split(r"[;\t|]", line) if p.strip()]
                if not parts:
                    raise InputError(f"{spec}:{k}: no drug name")
                names[parts[0]] = parts
            if not names:
                raise InputError(f"{spec}: no drugs listed")
            return cls(names)
        items = [spec] if isinstance(spec, str) else list(spec)
        names = {}
        for item in items:
            for n in str(item).split(","):
                if n.strip():
                    names[n.strip()] = [n.strip()]
        return cls(names)

    def __post_init__(self) -> None:
        from .cascade import DrugMatcher

        self.matcher = DrugMatcher(self.names)

    def __bool__(self) -> bool:
        return bool(self.names)

    def __getstate__(self) -> dict:  # sent to Ray workers by name; each rebuilds its automaton
        return {"names": self.names}

    def __setstate__(self, state: dict) -> None:
        self.names = state["names"]
        self.__post_init__()

    def with_synonyms(self, normaliser) -> "DrugList":
        """The list with every synonym and single-ingredient brand the drug normaliser
        (post.drugs.DrugNormaliser) knows for each listed drug added."""
        return DrugList({name: sorted({*syns, *normaliser.synonyms(name)}) for name, syns in self.names.items()})

    def match(self, mention: str) -> str | None:
        """The listed drug a mention names, if any."""
        named = self.matcher.mentioned(mention)
        return named[0] if named else None

    def mentioned(self, text: str) -> list[str]:
        """Every listed drug the text names (one automaton pass: linear in the text)."""
        return self.matcher.mentioned(text)


def article_rows(doc: Document, sentences: Iterable[Sentence], *, drugs: DrugList, model: str, run: str) -> list[dict]:
    """The table rows of one article: one per drug -> effect relation the student found (the ADE
    records of ``io.records_of``, with the article's metadata and the evidence sentence)."""
    rows = []
    for s in sentences:
        for r in records_of(s.model_copy(update={"doc_offset": s.doc_offset or 0})):
            rows.append({"pmid": doc.id, "title": doc.title, "journal": doc.meta.get("journal", ""),
                         "year": str(doc.meta.get("year", "")), "drug": r.drug, "effect": r.effect,
                         "drug_of_interest": drugs.match(r.drug) if drugs else None, "confidence": r.confidence,
                         "drug_confidence": r.drug_confidence, "effect_confidence": r.effect_confidence,
                         "sentence_id": s.id, "evidence": s.text, "sentence_start": s.doc_offset or 0,
                         "drug_start": r.drug_start, "drug_end": r.drug_end, "effect_start": r.effect_start,
                         "effect_end": r.effect_end, "substance": r.substance, "meddra_pt_code": r.meddra_pt_code,
                         "meddra_pt": r.meddra_pt, "meddra_soc": r.meddra_soc, "assertion": r.assertion,
                         "model": model, "run": run})
    return rows


# ---------------------------------------------------------------- the report

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1150px;color:#1d2430;padding:0 1rem}
h2{border-bottom:2px solid #e3e8ef;padding-bottom:.3rem;margin-top:2rem}.sub{color:#5b6575;margin-top:0}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}th,td{border:1px solid #d8dee8;padding:.3rem .55rem;vertical-align:top}
th{background:#f2f5f9;text-align:left}td.n{text-align:right}.art{border:1px solid #e3e8ef;border-radius:6px;padding:.6rem .8rem;margin:.7rem 0}
.art.interest{border-left:5px solid #c2410c}.art h3{font-size:1rem;margin:.1rem 0}.meta{color:#5b6575;font-size:.82rem}
.new{background:#16a34a;color:#fff;border-radius:3px;padding:0 .35rem;font-size:.75rem;margin-left:.4rem}
.ev{font-size:.9rem;margin:.3rem 0}mark.drug{background:#d7ecff}mark.ade{background:#ffd7d5}
mark.drug.interest{background:#fed7aa;font-weight:700}.conf{color:#5b6575;font-size:.8rem}
.kpi{display:flex;gap:1.2rem;flex-wrap:wrap}.kpi div{background:#f7f9fc;border-radius:6px;padding:.5rem .9rem}
.kpi b{display:block;font-size:1.3rem}
"""


def _marked(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for a, b, cls in sorted(spans):
        if a < pos:
            continue  # overlapping marks: the first wins
        out += [html.escape(text[pos:a]), f"<mark class='{cls}'>", html.escape(text[a:b]), "</mark>"]
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


def report_html(rows: list[dict], *, title: str, articles_screened: int, new_pmids: set[str], drugs: DrugList,
                command: str, problems: Sequence[str] = (), excerpts: bool = True, max_articles: int = 200,
                mentions: Sequence[dict] = (), cascade: dict | None = None) -> str:
    """The screening report (self-contained HTML). ``mentions``: the articles whose title or
    abstract names a drug of interest (pmid, title, journal, year, drugs), ADE found or not: each
    needs a reviewer's look, and those without a suspected ADE get their own list. ``cascade``:
    what each step in front of the student left out (apps.cascade.CascadeCounts)."""
    # a table read back from Parquet holds NaN where a column was empty: it is "no value", not a value
    rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]
    by_article: dict[str, list[dict]] = {}
    for r in rows:
        by_article.setdefault(r["pmid"], []).append(r)

    def strength(pmid: str) -> tuple:
        rs = by_article[pmid]
        return (any(r["drug_of_interest"] for r in rs), max((r["confidence"] or 0) for r in rs), len(rs))

    ranked = sorted(by_article, key=strength, reverse=True)
    interest = [p for p in ranked if any(r["drug_of_interest"] for r in by_article[p])]
    h = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
         f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
         f"<h1>{html.escape(title)}</h1>", f"<p class='sub'>Made by <code>{html.escape(command)}</code></p>",
         "<div class='kpi'>", f"<div><b>{articles_screened:,}</b>articles screened</div>",
         f"<div><b>{len(by_article):,}</b>with a suspected ADE</div>",
         f"<div><b>{len(rows):,}</b>drug-ADE pairs</div>",
         f"<div><b>{len(new_pmids):,}</b>new since the previous run "
         f"({len([p for p in by_article if p in new_pmids]):,} with an ADE)</div>"]
    if drugs:
        named = {m["pmid"] for m in mentions} | set(interest)
        h.append(f"<div><b>{len(named):,}</b>mention a drug of interest</div>")
        h.append(f"<div><b>{len(interest):,}</b>with an ADE of a drug of interest</div>")
    h.append("</div>")
    if drugs:
        h.append("<p>Drugs of interest: " + ", ".join(f"<mark class='drug interest'>{html.escape(n)}</mark>"
                                                      for n in drugs.names) + "</p>")
    if problems:
        h.append(f"<p class='note'>{len(problems):,} input problem(s) reported and skipped; see problems.txt.</p>")
    if cascade:
        c = cascade
        h.append("<h2>What the student read (this run)</h2><table><tr><th>step</th><th>left out</th></tr>"
                 f"<tr><td>abstracts naming no drug of interest (not split)</td><td class='n'>"
                 f"{c['abstracts_without_listed_drug']:,} of {c['abstracts']:,} abstracts</td></tr>"
                 f"<tr><td>sentences naming no drug of interest</td><td class='n'>"
                 f"{c['sentences_without_listed_drug']:,} of {c['sentences']:,} sentences</td></tr>"
                 f"<tr><td>sentences below the ADE gate</td><td class='n'>{c['sentences_below_gate']:,}</td></tr>"
                 f"<tr><td><b>read by the student</b></td><td class='n'><b>{c['sentences_to_student']:,}</b></td></tr>"
                 "</table>")
    # drug x effect counts (articles)
    pairs = Counter()
    for pmid, rs in by_article.items():
        for key in {(r["drug_of_interest"] or r["drug"].lower(), r["effect"].lower()) for r in rs}:
            pairs[key] += 1
    h.append("<h2>Drug x adverse effect (articles)</h2>")
    if pairs:
        h.append("<table><tr><th>drug</th><th>adverse effect</th><th>articles</th></tr>")
        for (d, e), n in pairs.most_common(50):
            cls = " class='interest'" if drugs and drugs.match(d) else ""
            h.append(f"<tr><td{cls}>{html.escape(d)}</td><td>{html.escape(e)}</td><td class='n'>{n}</td></tr>")
        h.append("</table>")
    else:
        h.append("<p>No drug-ADE pair found.</p>")
    h.append(f"<h2>Articles, strongest signal first{' (drugs of interest first)' if drugs else ''}</h2>")
    for pmid in ranked[:max_articles]:
        rs = by_article[pmid]
        first = rs[0]
        cls = "art interest" if any(r["drug_of_interest"] for r in rs) else "art"
        new = "<span class='new'>new</span>" if pmid in new_pmids else ""
        h.append(f"<div class='{cls}'><h3><a href='https://pubmed.ncbi.nlm.nih.gov/{html.escape(pmid)}/'>PMID "
                 f"{html.escape(pmid)}</a>{new} {html.escape(first['title'])}</h3>"
                 f"<div class='meta'>{html.escape(first['journal'])} {html.escape(first['year'])}</div>")
        by_sentence: dict[str, list[dict]] = {}
        for r in rs:
            by_sentence.setdefault(r["sentence_id"], []).append(r)
        for sid, srs in by_sentence.items():
            best: dict[tuple, float] = {}  # one entry per (drug, effect) strings, at its highest confidence
            for r in srs:
                k = (r["drug"], r["effect"])
                best[k] = max(best.get(k, 0.0), r["confidence"] or 0.0)
            pairs_txt = "; ".join(f"{html.escape(dr)} &rarr; {html.escape(ef)} <span class='conf'>({c:.2f})</span>"
                                  for (dr, ef), c in best.items())
            if excerpts:
                start = srs[0]["sentence_start"]
                spans = []
                for r in srs:
                    spans.append((r["drug_start"] - start, r["drug_end"] - start,
                                  "drug interest" if r["drug_of_interest"] else "drug"))
                    spans.append((r["effect_start"] - start, r["effect_end"] - start, "ade"))
                h.append(f"<div class='ev'>{_marked(srs[0]['evidence'], spans)}<br>{pairs_txt}</div>")
            else:
                h.append(f"<div class='ev'>{pairs_txt}</div>")
        h.append("</div>")
    if not ranked:
        h.append("<p>No suspected ADE in the articles screened.</p>")
    if len(ranked) > max_articles:
        h.append(f"<p>{len(ranked) - max_articles:,} more articles in articles.parquet / articles.csv.</p>")
    if drugs:
        quiet = sorted((m for m in mentions if m["pmid"] not in by_article), key=lambda m: m["pmid"])
        h.append("<h2>Drugs of interest named, no suspected ADE found</h2>")
        h.append("<p class='sub'>The student found no drug-ADE pair in these articles, but their title or abstract names "
                 "a drug of interest: screen them by hand (full text, case reports).</p>")
        for m in quiet[:max_articles]:
            new = "<span class='new'>new</span>" if m["pmid"] in new_pmids else ""
            names = ", ".join(f"<mark class='drug interest'>{html.escape(n)}</mark>" for n in m["drugs"])
            h.append(f"<div class='art interest'><h3><a href='https://pubmed.ncbi.nlm.nih.gov/{html.escape(m['pmid'])}/'>"
                     f"PMID {html.escape(m['pmid'])}</a>{new} {html.escape(m['title'])}</h3>"
                     f"<div class='meta'>{html.escape(m['journal'])} {html.escape(m['year'])} &middot; names {names}</div></div>")
        if not quiet:
            h.append("<p>None.</p>")
        elif len(quiet) > max_articles:
            h.append(f"<p>{len(quiet) - max_articles:,} more in mentions.csv.</p>")
    h.append("</body></html>")
    return "\n".join(h)
