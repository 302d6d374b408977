"""The k-fold summary: per-fold scores, mean and sd over folds, sign test against the teacher."""

from __future__ import annotations

import statistics

import pytest

from ade_distill.evaluate.folds import fold_markdown, fold_summary, sign_test
from ade_distill.evaluate.metrics import EvaluationError


def _metrics(**f1s):
    blk = lambda f: {"micro": {"f1": f}}  # noqa: E731
    return {"systems": {s: {"entity": {"strict": blk(e)},
                            "relation": {"strict": blk(r), "lenient": blk(r + 0.02), "text": blk(r + 0.01)}}
                        for s, (e, r) in f1s.items()}}


def test_sign_test_by_hand():
    assert sign_test([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) == pytest.approx(2 / 1024)
    assert sign_test([1, -1]) == 1.0 and sign_test([0, 0]) == 1.0
    assert sign_test([1] * 9 + [-1]) == pytest.approx(2 * 11 / 1024)  # k=1 of n=10: 2*(1+10)/2^10


def test_fold_summary_mean_sd_and_difference_from_the_teacher():
    per_fold = {k: _metrics(teacher=(0.70, 0.58 + k / 100), student=(0.72, 0.60 + k / 50)) for k in range(3)}
    s = fold_summary(per_fold, reference="teacher")
    rel = s["systems"]["student"]["relation strict"]
    assert rel["per_fold"] == pytest.approx([60.0, 62.0, 64.0])
    assert rel["mean"] == pytest.approx(62.0) and rel["sd"] == pytest.approx(statistics.stdev([60, 62, 64]))
    d = s["versus_reference"]["student"]["relation strict"]
    assert d["per_fold"] == pytest.approx([2.0, 3.0, 4.0]) and d["wins"] == 3 and d["losses"] == 0
    assert d["sign_test_p"] == pytest.approx(0.25)
    md = fold_markdown(s, micro=_metrics(teacher=(0.7, 0.59), student=(0.72, 0.62)))
    assert "| student | relation strict | 60.0 | 62.0 | 64.0 | 62.0 ± 2.0 |" in md
    assert "| student | relation strict | +3.0 | 3 / 0 | 0.250 |" in md
    micro_table = md.split("## Micro over all out-of-fold predictions")[1].split("##")[0]
    assert "| student | 72.0 | 62.0 | 64.0 | 63.0 |" in micro_table and "SpERT" in md and "ITER" in md


def test_fold_summary_refuses_folds_that_score_other_systems():
    with pytest.raises(EvaluationError, match="other systems"):
        fold_summary({0: _metrics(a=(0.5, 0.5)), 1: _metrics(b=(0.5, 0.5))})
    with pytest.raises(EvaluationError, match="reference"):
        fold_summary({0: _metrics(a=(0.5, 0.5))}, reference="teacher")


def test_folds_command_writes_the_report(tmp_path, capsys):
    import json

    from ade_distill.cli import main

    args = []
    for k in range(3):
        p = tmp_path / f"m{k}.json"
        m = _metrics(teacher=(0.70, 0.58), student=(0.72, 0.60 + k / 100))
        p.write_text(json.dumps({**m, "n_sentences": 10}))
        args += ["--fold", f"{k}={p}"]
    assert main(["folds", *args, "--reference", "teacher", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "relation F1 61.0 ± 1.0" in out and (tmp_path / "r" / "folds.md").exists()
    assert json.loads((tmp_path / "r" / "folds.json").read_text())["folds"] == [0, 1, 2]
    assert main(["folds", "--fold", "x=1", "--out", str(tmp_path / "r2")]) == 2
