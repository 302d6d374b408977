"""PubMed: PubmedArticleSet XML (streamed), the MEDLINE text format, and an E-utilities client.

Each article becomes a Document whose ``title`` is the ArticleTitle and whose ``text``
is the abstract (labelled parts of a structured abstract are kept as ``LABEL: text``).
"""

from __future__ import annotations

import gzip
import io
import logging
import re
import time
import zlib
from pathlib import Path
from typing import IO, Iterator

from lxml import etree

from ..core.errors import AdeDistillError
from ..core.schema import Document
from . import InputError, Problems, require_file

log = logging.getLogger(__name__)
_WS = re.compile(r"\s+")

EUTILS_BASE = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip()


_LAYOUT_WS = re.compile(r"\n\s*$")


def _text_of(el) -> str:
    """All text under ``el`` (mixed content such as <sub> or <i> included), whitespace-normalised.

    Pretty-printed files put a newline and indentation before inline tags
    ("β\n\t\t<sub>2</sub>-agonist"); that layout whitespace is dropped so the text
    reads "β2-agonist" as PubMed shows it.
    """
    if el is None:
        return ""
    for child in el.iterdescendants():
        prev = child.getprevious()
        if prev is None:
            parent = child.getparent()
            if parent.text and _LAYOUT_WS.search(parent.text):
                parent.text = parent.text.rstrip()
        elif prev.tail and _LAYOUT_WS.search(prev.tail):
            prev.tail = prev.tail.rstrip()
    return _norm("".join(el.itertext()))


def _article_document(art, source: str) -> Document:
    # The article's own PMID only: a `.//PMID` search would take the PMID of a comment or
    # correction the article cites (CommentsCorrections/PMID).
    pmid = art.findtext("MedlineCitation/PMID") or art.findtext("BookDocument/PMID")
    if not pmid or not pmid.strip():
        raise ValueError("article without a PMID")
    pmid = pmid.strip()
    article = art.find("MedlineCitation/Article")
    title = _text_of(article.find("ArticleTitle")) if article is not None else ""
    parts = []
    for ab in art.iterfind("MedlineCitation/Article/Abstract/AbstractText"):
        body = _text_of(ab)
        if not body:
            continue
        label = ab.get("Label")
        parts.append(f"{label}: {body}" if label else body)
    meta: dict = {"pmid": pmid}
    journal = art.findtext("MedlineCitation/Article/Journal/Title")
    if journal:
        meta["journal"] = _norm(journal)
    year = (art.findtext("MedlineCitation/Article/Journal/JournalIssue/PubDate/Year")
            or art.findtext("MedlineCitation/Article/Journal/JournalIssue/PubDate/MedlineDate"))
    if year:
        meta["year"] = _norm(year)
    mesh = [_text_of(d) for d in art.iterfind("MedlineCitation/MeshHeadingList/MeshHeading/DescriptorName")]
    if mesh:
        meta["mesh"] = mesh
    ptypes = [_text_of(p) for p in art.iterfind("MedlineCitation/Article/PublicationTypeList/PublicationType")]
    if ptypes:
        meta["publication_types"] = ptypes
    for aid in art.iterfind("PubmedData/ArticleIdList/ArticleId"):
        if aid.get("IdType") == "doi" and aid.text:
            meta["doi"] = aid.text.strip()
    if not parts:
        meta["no_abstract"] = True
    if not title and not parts:
        raise ValueError(f"PMID {pmid}: neither a title nor an abstract")
    return Document(id=pmid, title=title, text=" ".join(parts), source=source, meta=meta)


def _iter_articles(stream: IO[bytes], name: str, problems: Problems) -> Iterator[Document]:
    # No entity resolution and no network: PubMed XML needs neither, and it keeps XXE out.
    context = etree.iterparse(stream, events=("end",), tag=("PubmedArticle", "PubmedBookArticle"),
                              resolve_entities=False, no_network=True, load_dtd=False,
                              huge_tree=True)
    n = 0
    try:
        for _, art in context:
            n += 1
            try:
                yield _article_document(art, "pubmed")
            except ValueError as exc:
                problems.add(f"{name}: article {n}: {exc}")
            # Free what has been read so memory stays flat on baseline files.
            art.clear()
            while art.getprevious() is not None:
                del art.getparent()[0]
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else "?"
        raise InputError(f"{name}:{line}: malformed XML: {exc.msg}") from exc


def _open_maybe_gzip(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


# A .gz that is not gzip, or was cut short (a partial download), fails only while it is read.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _gzip_error(path: Path, exc: Exception) -> InputError:
    what = "truncated" if isinstance(exc, EOFError) else "not a valid gzip file"
    return InputError(f"{path}: {what} ({exc})")


def ingest_pubmed_xml(path: str | Path, problems: Problems | None = None) -> Iterator[Document]:
    """Stream Documents from a PubmedArticleSet XML file (efetch or baseline; ``.gz`` too)."""
    path = require_file(path, "PubMed XML file")
    problems = problems if problems is not None else Problems()
    try:
        with _open_maybe_gzip(path) as fh:
            yield from _iter_articles(fh, str(path), problems)
    except _GZIP_ERRORS as exc:
        raise _gzip_error(path, exc) from exc


def _medline_records(fh: IO[str], name: str) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    fields: list[tuple[str, str]] = []
    start = 0
    for lineno, line in enumerate(fh, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            if fields:
                yield start, fields
            fields = []
            continue
        if line.startswith("      ") and fields:
            tag, value = fields[-1]
            fields[-1] = (tag, f"{value} {line.strip()}")
        elif len(line) >= 6 and line[4:6] == "- ":
            if not fields:
                start = lineno
            fields.append((line[:4].strip(), line[6:].strip()))
        else:
            raise InputError(f"{name}:{lineno}: not a MEDLINE line (expected 'TAG - value')")
    if fields:
        yield start, fields


def ingest_pubmed_medline(path: str | Path, problems: Problems | None = None) -> Iterator[Document]:
    """Stream Documents from a MEDLINE/nbib text file (efetch ``rettype=medline``)."""
    path = require_file(path, "MEDLINE file")
    problems = problems if problems is not None else Problems()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, fields in _medline_records(fh, str(path)):
                rec: dict[str, list[str]] = {}
                for tag, value in fields:
                    rec.setdefault(tag, []).append(value)
                pmid = (rec.get("PMID") or [""])[0]
                if not pmid:
                    problems.add(f"{path}:{lineno}: MEDLINE record without PMID")
                    continue
                title = " ".join(rec.get("TI", []))
                abstract = " ".join(rec.get("AB", []))
                if not title and not abstract:
                    problems.add(f"{path}:{lineno}: PMID {pmid}: neither TI nor AB")
                    continue
                meta: dict = {"pmid": pmid}
                for tag, key in (("JT", "journal"), ("DP", "year")):
                    if tag in rec:
                        meta[key] = rec[tag][0]
                for tag, key in (("MH", "mesh"), ("PT", "publication_types")):
                    if tag in rec:
                        meta[key] = rec[tag]
                if not abstract:
                    meta["no_abstract"] = True
                yield Document(id=pmid, title=title, text=abstract, source="medline", meta=meta)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text at byte {exc.start}") from exc
    except _GZIP_ERRORS as exc:
        raise _gzip_error(path, exc) from exc


def ingest_pubmed(path: str | Path, problems: Problems | None = None) -> Iterator[Document]:
    """XML or MEDLINE, told apart by the file's first non-blank bytes."""
    path = require_file(path, "PubMed file")
    try:
        with _open_maybe_gzip(path) as fh:
            head = fh.read(512).lstrip()
    except _GZIP_ERRORS as exc:
        raise _gzip_error(path, exc) from exc
    if not head:
        raise InputError(f"{path}: empty file")
    if head.startswith(b"<"):
        return ingest_pubmed_xml(path, problems)
    return ingest_pubmed_medline(path, problems)


def pubmed_documents(files=(), query: str | None = None, *, problems: Problems, max_records: int = 1000,
                     api_key: str | None = None, email: str | None = None, base_url: str | None = None
                     ) -> Iterator[Document]:
    """Documents from PubMed files and/or an E-utilities query. Every file is checked before any
    is read; with several files, a bad one is reported and skipped (a single bad file raises);
    a PMID met again is reported and its later copy skipped."""
    files = [require_file(f, "PubMed file") for f in files]
    seen: dict[str, str] = {}
    for path in files:
        try:
            for doc in ingest_pubmed(path, problems):
                if doc.id in seen:
                    problems.add(f"{path}: PMID {doc.id} already read from {seen[doc.id]}; this copy skipped")
                    continue
                seen[doc.id] = str(path)
                yield doc
        except InputError as exc:
            if len(files) == 1:
                raise
            problems.add(f"{exc} (rest of this file skipped)")
    if query:
        kw = {"base_url": base_url} if base_url else {}
        with EUtilsClient(api_key=api_key, email=email, **kw) as client:
            yield from client.fetch(query, max_records=max_records, problems=problems)


class EUtilsError(AdeDistillError, RuntimeError):
    """E-utilities answered with an error or could not be reached after retries."""


class EUtilsClient:
    """NCBI E-utilities: esearch with the history server, then efetch in batches.

    Keeps to NCBI's rate limit (3 requests/s, 10 with an API key), retries 429 and 5xx
    answers and connection errors with exponential backoff (honouring Retry-After), and
    sends every parameter in a POST body so an API key never appears in a URL or a log.
    """

    def __init__(self, *, api_key: str | None = None, email: str | None = None,
                 tool: str = "ade-distill", base_url: str = EUTILS_BASE, batch_size: int = 200,
                 max_retries: int = 5, backoff: float = 1.0, timeout: float = 60.0,
                 requests_per_second: float | None = None) -> None:
        import httpx

        self.api_key = api_key
        self.email = email
        self.tool = tool
        self.base_url = base_url.rstrip("/") + "/"
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff = backoff
        rate = requests_per_second or (10.0 if api_key else 3.0)
        self.min_interval = 1.0 / rate
        self._last = 0.0
        self._http = httpx.Client(timeout=timeout)

    def __repr__(self) -> str:  # never show the key
        return f"EUtilsClient(base_url={self.base_url!r}, key={'set' if self.api_key else 'none'})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "EUtilsClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _params(self, **params) -> dict:
        out = {k: v for k, v in params.items() if v is not None}
        out["tool"] = self.tool
        if self.email:
            out["email"] = self.email
        if self.api_key:
            out["api_key"] = self.api_key
        return out

    def _post(self, endpoint: str, **params) -> bytes:
        import httpx

        url = self.base_url + endpoint
        data = self._params(**params)
        for attempt in range(self.max_retries + 1):
            wait = self._last + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            retry_after = None
            try:
                resp = self._http.post(url, data=data)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}"
            else:
                if resp.status_code == 200:
                    return resp.content
                if resp.status_code != 429 and resp.status_code < 500:
                    raise EUtilsError(f"{endpoint}: HTTP {resp.status_code}: {resp.text[:200]}")
                reason = f"HTTP {resp.status_code}"
                retry_after = resp.headers.get("Retry-After")
            if attempt == self.max_retries:
                raise EUtilsError(f"{endpoint}: gave up after {attempt + 1} tries ({reason})")
            delay = self.backoff * (2 ** attempt)
            if retry_after:
                try:
                    delay = max(delay, float(retry_after))
                except ValueError:
                    pass
            log.warning("%s: %s, retrying in %.1f s", endpoint, reason, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def search(self, query: str, *, db: str = "pubmed") -> tuple[int, str, str]:
        """esearch with usehistory: (count, WebEnv, query_key)."""
        body = self._post("esearch.fcgi", db=db, term=query, usehistory="y", retmax=0)
        try:
            root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            raise EUtilsError(f"esearch: malformed XML answer: {exc.msg}") from exc
        err = root.findtext("ERROR")
        if err:
            raise EUtilsError(f"esearch: {err}")
        count, webenv, qk = root.findtext("Count"), root.findtext("WebEnv"), root.findtext("QueryKey")
        if count is None or not webenv or not qk:
            raise EUtilsError("esearch: answer lacks Count, WebEnv or QueryKey")
        return int(count), webenv, qk

    def fetch_xml(self, query: str, *, max_records: int | None = None) -> Iterator[tuple[str, bytes]]:
        """(name, PubmedArticleSet XML) per efetch batch for the records matching ``query``."""
        count, webenv, qk = self.search(query)
        total = count if max_records is None else min(count, max_records)
        log.info("esearch: %d records match, fetching %d", count, total)
        for start in range(0, total, self.batch_size):
            n = min(self.batch_size, total - start)
            yield f"efetch[{start}:{start + n}]", self._post("efetch.fcgi", db="pubmed", WebEnv=webenv, query_key=qk,
                                                             retstart=start, retmax=n, rettype="abstract", retmode="xml")

    def fetch(self, query: str, *, max_records: int | None = None,
              problems: Problems | None = None) -> Iterator[Document]:
        """Documents for every PubMed record matching ``query`` (at most ``max_records``)."""
        problems = problems if problems is not None else Problems()
        for name, body in self.fetch_xml(query, max_records=max_records):
            yield from _iter_articles(io.BytesIO(body), name, problems)
