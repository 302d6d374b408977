#!/usr/bin/env bash
# A Label Studio review task pre-annotated by an ade-distill student: start a real Label Studio on
# 127.0.0.1 (make label-studio; playwright in its venv: pip install playwright), export the
# sentences of the embedded sample's new documents that the quickstart student (make demo) is
# least sure of, push them as tasks, screenshot the first one in Debian's chromium.
#   bash reports/review/make_screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
LS_VENV=${LABEL_STUDIO_VENV:-$HOME/.cache/ade-distill/labelstudio-venv}
MODEL=${MODEL:-runs/quickstart/train-distilled/model}
TMP=$(mktemp -d)
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
USER_EMAIL=reviewer@example.org; PASSWORD=review-pass-$RANDOM$RANDOM; export LABEL_STUDIO_API_KEY=key$RANDOM$RANDOM$RANDOM
LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true LABEL_STUDIO_BASE_DATA_DIR=$TMP/ls \
  "$LS_VENV/bin/label-studio" start --no-browser --internal-host 127.0.0.1 --port "$PORT" --data-dir "$TMP/ls" \
  --username "$USER_EMAIL" --password "$PASSWORD" --user-token "$LABEL_STUDIO_API_KEY" > "$TMP/ls.log" 2>&1 &
LS_PID=$!
trap 'kill $LS_PID 2>/dev/null || true; rm -rf "$TMP"' EXIT
.venv/bin/ade-distill ingest text --input data/sample/documents --out "$TMP/sentences.jsonl"
.venv/bin/ade-distill review export --model "$MODEL" --in "$TMP/sentences.jsonl" --out "$TMP/tasks.json" -n 10
for i in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done
PROJECT=$(.venv/bin/ade-distill review push --tasks "$TMP/tasks.json" --url "http://127.0.0.1:$PORT" \
          --title "ade-distill review: quickstart student" | sed -n 's/.*project \([0-9]*\):.*/\1/p')
TASK=$(.venv/bin/python - "$PORT" "$PROJECT" <<'PY'
import os, sys
from ade_distill.labelstudio import LabelStudio
with LabelStudio(f"http://127.0.0.1:{sys.argv[1]}", os.environ["LABEL_STUDIO_API_KEY"]) as ls:
    print(min(t["id"] for t in ls.tasks(int(sys.argv[2]))))
PY
)
"$LS_VENV/bin/python" reports/review/screenshot.py --url "http://127.0.0.1:$PORT" --user "$USER_EMAIL" \
  --password "$PASSWORD" --project "$PROJECT" --task "$TASK" --out reports/review/label_studio_task.png
