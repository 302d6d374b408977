"""The README's Python example runs as written (a stand-in OpenAI server on 127.0.0.1 answers the
teacher's calls; everything else is the real code: the real encoder, training, extraction,
scoring and report)."""

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
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1].split("\n## ", 1)[0]
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


def test_readme_demo_output_is_the_committed_run():
    """The lines the README quotes from `make demo` are what the committed quickstart run printed
    (reports/quickstart/demo_output.txt, written by that run): no hand-typed result."""
    text = README.read_text(encoding="utf-8")
    block = text.split("`make demo` runs the main job", 1)[1].split("```", 2)[1]
    quoted = [line for line in block.strip().splitlines() if line.strip()]
    assert quoted, "the README quotes the demo's output"
    printed = (README.parent / "reports" / "quickstart" / "demo_output.txt").read_text(encoding="utf-8").splitlines()
    for line in quoted:
        assert line in printed, f"README line not in the committed demo output: {line}"


def test_no_machine_local_path_in_any_committed_report():
    """Reports name files relative to the repository, ../shared, site-packages, <tmp> or ~, never by
    this machine's absolute layout (core.paths.shown)."""
    pattern = re.compile(r"/(home|work|tmp|root)/")
    bad = [str(f.relative_to(REPO)) for f in (REPO / "reports").rglob("*")
           if f.is_file() and f.suffix in (".json", ".md", ".html", ".txt", ".sh", ".log", ".py", ".csv")
           and pattern.search(f.read_text(encoding="utf-8", errors="replace"))]
    assert not bad, bad
