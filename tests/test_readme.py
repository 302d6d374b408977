"""The README: its first screen, its generated blocks (equal to what the committed reports give),
its 5-line example (run as written, offline), and the Python API example of docs/python-api.md (a
stand-in OpenAI server on 127.0.0.1 answers the teacher's calls; everything else is the real code)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from ade_distill.core.sample import SAMPLE_DIR
from ade_distill.core.schema import read_sentences
from tests.fake_openai import FakeOpenAI, gold_answers

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _python_example() -> str:
    section = (REPO / "docs" / "python-api.md").read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python API section holds one example"
    return blocks[0]


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    code = _python_example()
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with FakeOpenAI(gold_answers(read_sentences(SAMPLE_DIR / "gold.jsonl"))) as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
        runpy.run_path(str(script), run_name="__main__")
        assert len(api.requests) == 40  # one call per sentence the example labels
    out = capsys.readouterr().out
    assert "teacher gpt-4o-mini: 40 labelled, 0 failed" in out
    assert re.search(r"^student\s+\d+\.\d", out, re.M)  # the evaluation row: entity F1 first
    run = tmp_path / "runs" / "api"
    assert (run / "student" / "model.safetensors").exists()
    assert (run / "report" / "report.html").exists() and (run / "metrics.json").exists()
    assert "sk-test" not in (run / "teacher.run.json").read_text()


def test_readme_blocks_are_generated_from_the_committed_reports():
    """The headline table and the demo's output are what scripts/readme_blocks.py makes from the
    committed reports: no hand-typed result can drift from them."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(REPO / "scripts" / "readme_blocks.py"), "--check"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_first_screen_holds_what_it_does_the_commands_the_result_and_the_example():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    first = "\n".join(lines[:60])
    for must in ("make demo", "make test", "<!-- begin: headline -->", "| teacher LLM", "| distilled student",
                 "## Extract ADEs from your documents in 5 lines", "```python"):
        assert must in first, must


def test_the_five_line_examples_run_offline(tmp_path, monkeypatch, capsys):
    """Both 5-line examples, as written: the student from the sample, then the same records with
    substance, MedDRA PT and assertion flag (drug vocabulary and MedDRA terms from ../shared/data,
    the path the README names resolved to the tests' shared data folder)."""
    text = README.read_text(encoding="utf-8").split("## Extract ADEs from your documents in 5 lines", 1)[1]
    text = text.split("\n## ", 1)[0]
    codes = re.findall(r"```python\n(.*?)```", text, re.S)
    stated = re.findall(r"prints `(.*?)`", text)
    assert len(codes) == len(stated) == 2 and all(len(c.strip().splitlines()) == 5 for c in codes)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(_write(tmp_path / "five.py", codes[0])), run_name="__main__")
    assert capsys.readouterr().out.strip().splitlines()[-1] == stated[0]
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "meddra_labels").exists() or not (SHARED_DATA / "drugs").exists():
        return  # the second example reads ../shared/data; without it the first one still ran
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(REPO / "scripts" / "meddra_release_from_labels.py"), "--labels",
                        str(SHARED_DATA / "meddra_labels"), "--out", "runs/meddra"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    runpy.run_path(str(_write(tmp_path / "pv.py", codes[1].replace("../shared/data", str(SHARED_DATA)))),
                   run_name="__main__")
    assert capsys.readouterr().out.strip().splitlines()[-1] == stated[1]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_no_machine_local_path_in_any_committed_report():
    """Reports name files relative to the repository, ../shared, site-packages, <tmp> or ~, never by
    this machine's absolute layout (core.paths.shown)."""
    pattern = re.compile(r"/(home|work|tmp|root)/")
    bad = [str(f.relative_to(REPO)) for f in (REPO / "reports").rglob("*")
           if f.is_file() and f.suffix in (".json", ".md", ".html", ".txt", ".sh", ".log", ".py", ".csv")
           and pattern.search(f.read_text(encoding="utf-8", errors="replace"))]
    assert not bad, bad
