#!/usr/bin/env bash
# The demo as a new user meets it: a clean checkout of HEAD (a git worktree: no runs/, so an empty
# teacher cache and every label a real call to the local LLM), the installed .venv, timed, with its
# output kept as printed (demo_output.txt; the README quotes it) and the run's files copied here.
# Run from the repository root with nothing else on the cores:  bash reports/quickstart/make_report.sh
set -euo pipefail
# .venv holds the project as an editable install of this checkout: the demo's code, pipeline and
# sample come from here, so they must be what HEAD holds
git diff --quiet HEAD -- ade_distill pipelines || { echo "ade_distill/ or pipelines/ differ from HEAD: commit first" >&2; exit 1; }
OUT=reports/quickstart
WT=$(mktemp -d)/checkout
git worktree add --detach "$WT" HEAD >/dev/null
trap 'git worktree remove --force "$WT"' EXIT
ln -s "$PWD/.venv" "$WT/.venv"
( cd "$WT" && git log -1 --format='commit %h' && { time .venv/bin/ade-distill demo; } ) > $OUT/demo_output.txt 2>&1
cat $OUT/demo_output.txt
R=$WT/runs/quickstart
cp $R/report/report.html $R/report/report.md $R/evaluate/metrics.json $R/manifest.json $R/extract/ades.jsonl $OUT/
