import json
import shutil
import subprocess

import pytest

from ade_distill.cli import main
from ade_distill.core.schema import read_sentences

SYSTEMS = ("edited-recall", "edited-boundary")


@pytest.fixture()
def report(tmp_path, sample_dir, capsys):
    gold = sample_dir / "gold.jsonl"
    preds = [f"{n}={sample_dir / 'predictions' / (n + '.jsonl')}" for n in SYSTEMS]
    metrics = tmp_path / "metrics.json"
    args = ["evaluate", "--gold", str(gold), "--out", str(metrics), "--bootstrap", "200"]
    for p in preds:
        args += ["--pred", p]
    assert main(args) == 0

    def make(*extra):
        out = tmp_path / ("report" + "".join(extra).replace("-", "_"))
        argv = ["report", "--metrics", str(metrics), "--gold", str(gold), "--out", str(out), *extra]
        for p in preds:
            argv += ["--pred", p]
        assert main(argv) == 0
        capsys.readouterr()
        return out

    return make


def test_report_has_every_section(report, sample_dir):
    out = report()
    page = (out / "report.html").read_text()
    for section in ("Headline", "By label", "System against system", "Confidence", "Error analysis"):
        assert f"<h2>{section}</h2>" in page
    assert page.count("data:image/png;base64,") == 2  # bar chart + calibration, embedded
    assert "src='http" not in page and 'src="http' not in page  # self-contained
    assert "<mark class=\"fn\"" in page and "Most often missed ADE" in page
    md = (out / "report.md").read_text()
    assert "| edited-recall |" in md and "False negatives (sample):" in md
    assert json.loads((out / "metrics.json").read_text())["n_sentences"] == 51


def test_no_excerpts_leaves_out_all_sentence_text(report, sample_dir):
    out = report("--no-excerpts")
    page = (out / "report.html").read_text() + (out / "report.md").read_text()
    texts = [s.text for s in read_sentences(sample_dir / "gold.jsonl")]
    spans = [e.text for s in read_sentences(sample_dir / "gold.jsonl") for e in s.entities]
    assert not any(t in page for t in texts)
    assert not any(f">{t}<" in page or f"{t} (" in page for t in spans if len(t) > 4)
    assert "left out of this report" in page


def test_report_errors(tmp_path, capsys):
    bad = tmp_path / "m.json"
    bad.write_text("{}")
    assert main(["report", "--metrics", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "not a metrics file" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    out = report()
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
         f"--screenshot={shot}", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2400)
    # a rendered table and charts give many distinct colours; a blank or error page does not
    assert len(set(img.resize((300, 600)).getdata())) > 200


def test_report_says_how_each_system_was_made(tmp_path):
    from ade_distill.evaluate import evaluate
    from ade_distill.evaluate.report import write_report
    from ade_distill.pipeline import StudentSpec
    from ade_distill.core.schema import Entity, Relation, Sentence

    gold = [Sentence(id="s1", doc_id="d1", text="Drug X gave rash.", entities=[Entity(id="T1", label="DRUG", start=0, end=6, text="Drug X"),
                                                                  Entity(id="T2", label="ADE", start=12, end=16, text="rash")],
                     relations=[Relation(drug="T1", ade="T2")], source="gold")]
    specs = {"plain": StudentSpec(), "again": StudentSpec(distill_from=["plain", "other"]),
             "dev": StudentSpec(dev_share=0.1), "ref": StudentSpec(labels="gold")}
    made = {k: v.how_made() for k, v in specs.items()}
    assert "nothing chosen on a score" in made["plain"] and "plain + other" in made["again"]
    assert "10% dev share" in made["dev"] and "no gold" in made["dev"] and "reference" in made["ref"]
    metrics = evaluate(gold, {k: gold for k in specs}, n_bootstrap=0,
                       info={k: {"role": "student", "made": v} for k, v in made.items()})
    out = write_report(metrics, tmp_path, excerpts=False)
    md, page = out["md"].read_text(), out["html"].read_text()
    assert "## How each system was made" in md and "<h2>How each system was made</h2>" in page
    assert all(f"- **{k}**: {v}" in md for k, v in made.items())
