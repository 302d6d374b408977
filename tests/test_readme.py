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


def test_the_five_line_example_runs_offline(tmp_path, monkeypatch, capsys):
    text = README.read_text(encoding="utf-8").split("## Extract ADEs from your documents in 5 lines", 1)[1]
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    assert len(code.strip().splitlines()) == 5
    stated = re.search(r"prints `(.*?)`", text).group(1)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(_write(tmp_path / "five.py", code)), run_name="__main__")
    assert capsys.readouterr().out.strip().splitlines()[-1] == stated


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
