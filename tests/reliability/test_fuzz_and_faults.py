"""Every reader fuzzed through the CLI, every teacher fault injected (tests/reliability/harness.py;
`python -m tests.reliability.harness` runs the full counts and writes reports/reliability/)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.reliability.harness import FAULTS, READERS, fault_run, fuzz_reader, kill_matrix, mutate


def test_mutations_cover_every_kind():
    data = b"abcdefghij"
    assert mutate(data, [(0, 2, 3, b"")]) == b"abfghij"
    assert mutate(data, [(1, 0, 0, b"XY")]) == b"XYabcdefghij"
    assert mutate(data, [(2, 0, 2, b"")]) == b"ababcdefghij"
    assert mutate(data, [(4, 5, 0, b"")]) == b"abcde"
    assert mutate(data, [(5, 1, 2, b"Z")]) == b"aZdefghij"
    assert mutate(data, [(3, 0, 8, b"")]) != data


@pytest.mark.parametrize("reader", READERS)
def test_reader_gives_valid_records_or_one_line_error(reader):
    counts: Counter = Counter()
    fuzz_reader(reader, examples=40, seed=0, counts=counts)
    assert counts[f"{reader}:tried"] >= 30
    assert counts[f"{reader}:ok"] + counts[f"{reader}:error"] == counts[f"{reader}:tried"]


@pytest.mark.parametrize("fault", FAULTS)
def test_teacher_fault_loses_no_sentence(fault):
    r = fault_run(fault, seed=1)
    assert r["lost"] == 0 and r["recorded_twice"] == 0
    assert r["labelled"] + r["failed"] == r["sentences"]
    if fault != "connection-refused":
        assert r["faults_injected"] > 0 and r["labelled"] >= r["sentences"] // 2
    else:
        assert r["failed"] == r["sentences"]


@pytest.mark.slow
def test_sigkill_at_random_points_over_20_runs_loses_nothing():
    r = kill_matrix(runs=20, seed=0)
    assert r["final_exit"] == 0 and r["lost"] == 0 and r["recorded_twice"] == 0
    assert r["labelled"] == r["sentences"]
    assert r["duplicate_calls"] <= r["runs_killed"]  # only a request in flight at a kill repeats
