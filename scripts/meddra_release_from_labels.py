"""A partial MedDRA release in the MSSO ASCII layout (pt.asc, llt.asc) made of the terms that FDA
drug labels are coded with (../shared/data/meddra_labels, Demner-Fushman et al. 2018), to try the
coder (`--meddra`) without a licensed release. It holds only the LLTs and PTs those labels use
(no hierarchy, so no SOC): for real work, point `--meddra` at your own release.

  python scripts/meddra_release_from_labels.py [--labels ../shared/data/meddra_labels] [--out runs/meddra]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.schema import atomic_open  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402


def terms(folder: Path) -> tuple[dict[int, str], dict[int, tuple[str, int]]]:
    """(pt code -> name, llt code -> (name, pt code)) over every labels file in ``folder``; a row is
    [mention, pt name, pt code, llt name, llt code]."""
    pts: dict[int, str] = {}
    llts: dict[int, tuple[str, int]] = {}
    files = sorted(folder.glob("*-labels.json"))
    if not files:
        raise SystemExit(f"{folder}: no *-labels.json file (the meddra_labels folder of ../shared/data)")
    for f in files:
        for rec in json.loads(f.read_text(encoding="utf-8")):
            for row in rec.get("adverse_events", []):
                if len(row) < 5 or not row[2] or not row[4]:
                    continue  # an uncoded mention
                pt, llt = int(row[2]), int(row[4])
                pts.setdefault(pt, row[1].strip())
                llts.setdefault(llt, (row[3].strip(), pt))
    for pt, name in pts.items():  # in MedDRA every PT is also an LLT with the same code
        llts.setdefault(pt, (name, pt))
    return pts, llts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=default_shared_data() / "meddra_labels")
    ap.add_argument("--out", type=Path, default=Path("runs/meddra"))
    a = ap.parse_args()
    pts, llts = terms(a.labels)
    a.out.mkdir(parents=True, exist_ok=True)
    with atomic_open(a.out / "pt.asc") as fh:
        fh.writelines(f"{c}${n}$$$$$$$$$$\n" for c, n in sorted(pts.items()))
    with atomic_open(a.out / "llt.asc") as fh:
        fh.writelines(f"{c}${n}${p}$$$$$$$Y$$\n" for c, (n, p) in sorted(llts.items()))
    print(f"{len(pts):,} PTs, {len(llts):,} LLTs -> {a.out}")


if __name__ == "__main__":
    main()
