"""`ade-distill screen`: weekly literature screening of PubMed for suspected ADEs.

Input: PubMed baseline / update files (.xml, .xml.gz, MEDLINE; a folder of them), and/or an
E-utilities query with a date window. Each input file is one shard (a query is fetched into shard
files first); a shard's rows (Parquet) and then its done-record (the PMIDs it covered, the
problems it met) are written atomically under <out>/shards/, so a killed run resumes at the first
unfinished shard and loses or duplicates no article. An article whose PMID an earlier shard (of
this run or an earlier one) covered is skipped: a rerun over the same input does nothing, and a
new week's files only cost their new PMIDs.

Outputs: articles.parquet / articles.csv (one row per drug -> ADE pair, with its evidence),
mentions.csv (every article whose title or abstract names a drug of interest, ADE found or not;
found with the drug list of the run that screened the article), problems.txt and report.html.

Engines: ``local`` (one process) or ``ray`` (Ray Data: shards spread over workers, the model
loaded once per worker; ``ray_address`` for a cluster, a local Ray otherwise).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..core.errors import InputError
from ..core.io import csv_cell
from ..core.schema import atomic_open

log = logging.getLogger(__name__)

PUBMED_GLOBS = ("*.xml", "*.xml.gz", "*.medline", "*.nbib", "*.txt")


@dataclass(frozen=True)
class Shard:
    path: str
    key: str  # stable name of its outputs: file name + content hash


def shards_of(inputs: Sequence[str | Path]) -> list[Shard]:
    """One shard per PubMed file (folders are searched, sorted by name)."""
    files: list[Path] = []
    for x in inputs:
        p = Path(x)
        if p.is_dir():
            found = sorted({f for g in PUBMED_GLOBS for f in p.glob(g) if f.is_file() and f.name != "SOURCE.md"})
            if not found:
                raise InputError(f"{p}: no PubMed files (.xml, .xml.gz, .medline, .nbib, .txt)")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    out, seen = [], set()
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        key = f"{f.name}.{h.hexdigest()[:12]}"
        if key not in seen:
            seen.add(key)
            out.append(Shard(str(f), key))
    return out


def _done_path(out: Path, shard: Shard) -> Path:
    return out / "shards" / f"{shard.key}.done.json"


def _rows_path(out: Path, shard: Shard) -> Path:
    return out / "shards" / f"{shard.key}.parquet"


def covered_pmids(out: Path) -> dict[str, str]:
    """PMID -> the run that screened it, from every finished shard in ``out``."""
    seen: dict[str, str] = {}
    for f in sorted((out / "shards").glob("*.done.json")):
        d = json.loads(f.read_text(encoding="utf-8"))
        for p in d["pmids"]:
            seen.setdefault(p, d["run"])
    return seen


def process_shard(student, shard: Shard, out: Path, *, drugs, model: str, run: str, skip: set[str],
                  post=None, cascade=None) -> dict:
    """Extract ADEs from one shard's new articles (through the post-processing chain ``post``, a
    ``post.chain.PostProcessor``, when given; behind ``cascade``, an ``apps.cascade.Cascade``, when
    given); rows, then the done-record (with what the cascade left out), written atomically."""
    import pandas as pd

    from ..ingest import Problems, ingest_pubmed
    from ..apps.screening import COLUMNS, article_rows

    problems = Problems()
    t0 = time.monotonic()
    pmids, rows, skipped = [], [], 0

    def fresh():
        nonlocal skipped
        try:
            for doc in ingest_pubmed(shard.path, problems):
                if doc.id in skip:
                    skipped += 1
                    continue
                yield doc
        except InputError as exc:  # a truncated .gz or malformed XML: what was read counts, the rest is reported
            problems.add(f"{exc} (rest of this file skipped)")

    n_sent, mentions = 0, []
    if cascade is not None:
        cascade.take_counts()
    for doc, sents in student.extract_documents(fresh(), problems=problems, cascade=cascade):
        pmids.append(doc.id)
        n_sent += len(sents)
        if post is not None:
            sents = post.apply(doc, sents)
        rows += article_rows(doc, sents, drugs=drugs, model=model, run=run)
        named = drugs.mentioned(doc.full_text) if drugs else []
        if named:
            mentions.append({"pmid": doc.id, "title": doc.title, "journal": doc.meta.get("journal", ""),
                             "year": str(doc.meta.get("year", "")), "drugs": named})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_open(_rows_path(out, shard), "wb") as fh:
        frame.to_parquet(fh, index=False)
    done = {"shard": shard.path, "key": shard.key, "run": run, "pmids": pmids, "skipped_seen": skipped,
            "sentences": n_sent, "rows": len(rows), "mentions": mentions, "problems": list(problems.messages),
            "cascade": cascade.take_counts().to_json() if cascade is not None else None,
            "seconds": round(time.monotonic() - t0, 2)}
    with atomic_open(_done_path(out, shard)) as fh:
        json.dump(done, fh)
    return done


class _ShardWorker:
    """Ray Data callable: one model per worker, one shard per call."""

    def __init__(self, model_dir: str, out: str, drugs, model: str, run: str, skip: set[str], threads: int | None,
                 runtime: str = "torch", quantize: str | None = None, post=None, prefilter: bool = False,
                 gate: str | None = None):
        from ..post.chain import PostProcessor
        from ..student import Student

        self.student = Student.from_pretrained(model_dir, device="cpu", threads=threads, runtime=runtime,
                                               quantize=quantize)
        chain = PostProcessor.from_config(post)
        self.args = (Path(out), drugs, model, run, skip, chain if chain.active else None)
        self.cascade = make_cascade(drugs, prefilter, gate)

    def __call__(self, batch: dict) -> dict:
        out, drugs, model, run, skip, post = self.args
        done = [process_shard(self.student, Shard(p, k), out, drugs=drugs, model=model, run=run, skip=skip, post=post,
                              cascade=self.cascade)
                for p, k in zip(batch["path"], batch["key"])]
        return {"key": [d["key"] for d in done], "articles": [len(d["pmids"]) for d in done]}


@dataclass
class ScreenResult:
    out: Path
    shards: int
    shards_run: int
    articles: int
    new_articles: int
    rows: int
    seconds: float
    sentences: int
    engine: str
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cascade: object = None  # apps.cascade.CascadeCounts of this run's shards, when a cascade ran

    def lines(self) -> list[str]:
        rate = f", {self.sentences / self.seconds:,.0f} sentences/s" if self.seconds and self.sentences else ""
        out = [f"{self.shards_run:,} of {self.shards:,} shard(s) screened on {self.engine} ({self.new_articles:,} new "
               f"articles{rate}); {self.articles:,} articles in all, {self.rows:,} drug-ADE rows",
               f"-> {self.files['parquet']}, {self.files['csv']}, {self.files['html']}"]
        if self.cascade is not None:
            out.insert(1, self.cascade.line())
        if self.problems:
            out.append(f"{len(self.problems):,} problem(s) reported and skipped (see {self.out / 'problems.txt'}):")
            out += [f"  {p}" for p in self.problems[:10]]
        return out


def screen(model: str | Path, inputs: Sequence[str | Path], out: str | Path, *, drugs=None, query: str | None = None,
           mindate: str | None = None, maxdate: str | None = None, max_records: int = 10_000, engine: str = "local",
           ray_address: str | None = None, workers: int | None = None, threads: int | None = None,
           excerpts: bool = True, api_key: str | None = None, email: str | None = None,
           eutils_url: str | None = None, command: str = "ade-distill screen", runtime: str = "torch",
           quantize: str | None = None, post=None, prefilter: bool = True, gate: str | Path | None = None
           ) -> ScreenResult:
    """Screen PubMed files (and/or a query) for suspected ADEs into ``out``: articles.parquet,
    articles.csv, report.html (and the per-shard files under shards/); ``post`` (a
    ``post.chain.PostConfig``) adds substances, MedDRA coding and assertion flags to the rows.

    The cascade (apps/cascade.py): with ``drugs`` and ``prefilter``, an abstract or a sentence that
    names no listed drug (or a synonym; with ``post.drugs``, every synonym and brand the drug
    vocabulary knows) is not read by the student; ``gate`` (a folder from ``ade-distill gate``)
    leaves out the sentences its classifier scores below its threshold. Both are counted."""
    import pandas as pd

    from ..apps.screening import COLUMNS, report_html
    from ..student.model import model_info

    out = Path(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    drug_list = drug_list_for(drugs, post)
    info = model_info(model)
    model_id = f"{info['id']}@{info['version']}"
    run = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    files = list(inputs)
    if query:
        files.append(_fetch_query(query, out, mindate=mindate, maxdate=maxdate, max_records=max_records,
                                  api_key=api_key, email=email, base_url=eutils_url))
    if not files:
        raise InputError("nothing to screen: give input files or a query")
    shards = shards_of(files)
    seen_before = covered_pmids(out)
    todo = [s for s in shards if not _done_path(out, s).exists()]
    t0 = time.monotonic()
    if todo:
        if engine == "local":
            from ..post.chain import PostProcessor
            from ..student import Student

            st = Student.from_pretrained(model, device="cpu", threads=threads, runtime=runtime, quantize=quantize)
            chain = PostProcessor.from_config(post)
            cascade = make_cascade(drug_list, prefilter, gate)
            skip = set(seen_before)
            for s in todo:
                d = process_shard(st, s, out, drugs=drug_list, model=model_id, run=run, skip=skip,
                                  post=chain if chain.active else None, cascade=cascade)
                skip.update(d["pmids"])
                log.info("shard %s: %d articles, %d rows", s.key, len(d["pmids"]), d["rows"])
        elif engine == "ray":
            _run_ray(todo, model, out, drugs=drug_list, model_id=model_id, run=run, skip=set(seen_before),
                     address=ray_address, workers=workers, threads=threads, runtime=runtime, quantize=quantize, post=post,
                     prefilter=prefilter, gate=str(gate) if gate else None)
        else:
            raise InputError(f"unknown engine {engine!r} (local or ray)")
    seconds = time.monotonic() - t0
    # the table: every finished shard's rows in this folder (this run's and earlier runs'); a PMID
    # that two shards of one parallel run both screened keeps the rows of the first (by name) only
    current = {s.key for s in shards}
    owner: dict[str, str] = {}
    frames, problems, n_sent, mentions = [], [], 0, []
    counts = None
    for f in sorted((out / "shards").glob("*.done.json")):
        d = json.loads(f.read_text(encoding="utf-8"))
        if d["key"] in current:
            problems += d["problems"]
            n_sent += d["sentences"] if d["run"] == run else 0
            if d["run"] == run and d.get("cascade"):
                from ..apps.cascade import CascadeCounts

                counts = counts or CascadeCounts()
                counts.add(d["cascade"])
        for p in d["pmids"]:
            owner.setdefault(p, d["key"])
        mentions += [m for m in d.get("mentions", []) if owner[m["pmid"]] == d["key"]]
        g = pd.read_parquet(out / "shards" / f"{d['key']}.parquet")
        frames.append(g[g["pmid"].map(owner.get) == d["key"]])
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    table = table.sort_values(["pmid", "sentence_id", "drug_start", "effect_start"], kind="stable", ignore_index=True)
    new = {p for p in owner if p not in seen_before}
    with atomic_open(out / "articles.parquet", "wb") as fh:
        table.to_parquet(fh, index=False)
    with atomic_open(out / "articles.csv") as fh:
        table.map(csv_cell).to_csv(fh, index=False)
    with atomic_open(out / "mentions.csv") as fh:
        pd.DataFrame([{**m, "drugs": "; ".join(m["drugs"])} for m in mentions],
                     columns=["pmid", "title", "journal", "year", "drugs"]).map(csv_cell).to_csv(fh, index=False)
    with atomic_open(out / "problems.txt") as fh:
        fh.write("".join(p + "\n" for p in problems))
    with atomic_open(out / "report.html") as fh:
        fh.write(report_html(table.to_dict("records"), title="PubMed screening for suspected adverse drug reactions",
                             articles_screened=len(owner), new_pmids=new, drugs=drug_list, command=command,
                             problems=problems, excerpts=excerpts, mentions=mentions,
                             cascade=counts.to_json() if counts else None))
    return ScreenResult(out, len(shards), len(todo), len(owner), len(new), len(table), seconds, n_sent, engine,
                        {"parquet": out / "articles.parquet", "csv": out / "articles.csv", "html": out / "report.html",
                         "mentions": out / "mentions.csv"},
                        problems, counts)


@dataclass
class GateResult:
    out: Path
    measured: dict

    def lines(self) -> list[str]:
        m = self.measured
        return [f"sentence gate -> {self.out}: trained on {m['train_sentences']:,} teacher-labelled sentences; on "
                f"{m['validation_sentences']:,} held out its threshold keeps {m['validation_recall']:.1%} of the "
                f"teacher's ADE sentences and passes {m['validation_pass_rate']:.1%} of all"]


def train_gate(labels: Sequence[str | Path], out: str | Path, **settings) -> GateResult:
    """The cascade's sentence gate from teacher-labelled sentence files, saved into ``out``;
    ``settings``: apps.cascade.GateSettings fields (recall, validation_share, ...)."""
    from ..apps.cascade import GateSettings, SentenceGate
    from .common import sentence_list

    gate = SentenceGate.train(sentence_list(list(labels)), GateSettings(**settings))
    gate.save(out)
    return GateResult(Path(out), gate.measured)


def drug_list_for(drugs, post=None):
    """The drugs of interest (names, a file, or a DrugList); with a drug vocabulary in ``post``
    (post.chain.PostConfig.drugs), each with every synonym and brand the vocabulary knows."""
    from ..apps.screening import DrugList

    drug_list = drugs if isinstance(drugs, DrugList) else DrugList.parse(drugs)
    if drug_list and post is not None and getattr(post, "drugs", None):
        from ..post.drugs import DrugNormaliser

        drug_list = drug_list.with_synonyms(DrugNormaliser.from_folder(post.drugs, _product_lines(post)))
    return drug_list


def make_cascade(drugs, prefilter: bool, gate):
    """The cascade a screening run puts in front of the student, or None when it has no step."""
    from ..apps.cascade import Cascade, SentenceGate

    c = Cascade(matcher=drugs.matcher if drugs and prefilter else None,
                gate=SentenceGate.load(gate) if gate else None)
    return c if c.active else None


def _product_lines(post) -> list[str]:
    if not getattr(post, "products", None):
        return []
    return Path(post.products).read_text(encoding="utf-8").splitlines()


def _run_ray(todo: list[Shard], model, out: Path, *, drugs, model_id: str, run: str, skip: set[str],
             address: str | None, workers: int | None, threads: int | None, runtime: str = "torch",
             quantize: str | None = None, post=None, prefilter: bool = False, gate: str | None = None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": workers or None}))
    n = max(1, min(len(todo), workers or int(ray.available_resources().get("CPU", 1))))
    ds = ray.data.from_items([{"path": s.path, "key": s.key} for s in todo], override_num_blocks=len(todo))
    if runtime == "onnx":  # export once here, not in every worker at the same time
        from ..student.onnx import ensure_export

        ensure_export(model, quantize)
    done = ds.map_batches(_ShardWorker, fn_constructor_args=(str(model), str(out), drugs, model_id, run, skip,
                                                             threads or 1, runtime, quantize, post, prefilter, gate),
                          batch_size=1, compute=ray.data.ActorPoolStrategy(size=n), num_cpus=1)
    for _ in done.iter_rows():  # run it; each shard's outputs are written by its worker
        pass


def _fetch_query(query: str, out: Path, *, mindate, maxdate, max_records, api_key, email, base_url) -> Path:
    """The query's records as one PubMed XML shard file in <out>/downloads (fetched once: a rerun
    of the same query and window reuses it)."""
    from ..ingest.pubmed import EUtilsClient

    term = query
    if mindate or maxdate:
        term = f"({query}) AND (\"{mindate or '1800/01/01'}\"[EDAT] : \"{maxdate or '3000/12/31'}\"[EDAT])"
    key = hashlib.sha256(f"{term}\0{max_records}".encode()).hexdigest()[:12]
    path = out / "downloads" / f"query-{key}.xml"
    if path.exists():
        return path
    kw = {"base_url": base_url} if base_url else {}
    with EUtilsClient(api_key=api_key, email=email, **kw) as client:
        bodies = list(client.fetch_xml(term, max_records=max_records))
    with atomic_open(path, "wb") as fh:
        fh.write(b"<?xml version='1.0' encoding='utf-8'?>\n<PubmedArticleSet>\n")
        for _, body in bodies:
            fh.write(_articles_of(body))
        fh.write(b"</PubmedArticleSet>\n")
    return path


def _articles_of(body: bytes) -> bytes:
    """The PubmedArticle elements of one efetch answer (without its XML declaration and root)."""
    from lxml import etree

    root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    return b"".join(etree.tostring(a) for a in root)
