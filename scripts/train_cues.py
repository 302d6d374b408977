"""Train the negation and speculation cue tagger (ade_distill/post/cues.py) on every BioScope-layout
XML file of a folder (by default all of BioScope: abstracts and full papers; add your own annotated
sentences in the same layout) and write the weights (by default, the ones the package ships):

  python scripts/train_cues.py [--bioscope ../shared/data/bioscope] [--out ade_distill/resources/cues/bioscope_cues.json]

How well the recipe does on text it did not see is measured by benchmarks/pv_assertion.py (abstracts,
10 folds by document); this script only refits it on everything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.ingest.bioscope import read_bioscope  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.post.cues import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bioscope", type=Path, default=default_shared_data() / "bioscope")
    ap.add_argument("--out", type=Path, default=REPO / "ade_distill" / "resources" / "cues" / "bioscope_cues.json")
    ap.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength of the regression")
    a = ap.parse_args()
    files = sorted(a.bioscope.glob("*.xml"))
    if not files:
        raise SystemExit(f"{shown(a.bioscope)}: no BioScope XML file (*.xml) in it")
    sents = [s for f in files for s in read_bioscope(f)]
    kinds = train(sents, c=a.c)
    data = {"source": "BioScope corpus (Vincze et al. 2008, BMC Bioinformatics 9(Suppl 11):S9), CC BY 2.0: "
                      + ", ".join(f.name for f in files),
            "sentences": len(sents), "c": a.c,
            "made_by": ("python scripts/train_cues.py " + " ".join(shown(x) for x in sys.argv[1:])).strip(),
            "kinds": kinds}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    os.replace(tmp, a.out)
    sizes = ", ".join(f"{k} {len(v['weights']):,} weights" for k, v in kinds.items())
    print(f"{shown(a.out)}: {len(sents):,} sentences, {sizes}, {a.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
