"""A teacher prediction file's <file>.info.json from its committed run summary (<file>.run.json):
whole-run sentences/s and cost per 1,000 sentences, computed, never typed in.

    python scripts/teacher_info.py reports/teacher/run_fold0_test.json reports/teacher/teacher_fold0_test.info.json
"""

import json
import sys

from ade_distill.workflows.teacher import run_info_file

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(run_info_file(sys.argv[1], sys.argv[2]), indent=2))
