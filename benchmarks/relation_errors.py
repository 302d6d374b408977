"""Where relation F1 is lost: for each prediction file, its false relations split into wrong
pairings of two gold spans and pairs with a span that is not gold, and its entity errors split
into boundary errors (overlapping a gold span of the same type: longer or shorter), spurious and
missed spans.

    python benchmarks/relation_errors.py --gold GOLD.jsonl PRED.jsonl [PRED.jsonl ...]
"""

from __future__ import annotations

import argparse

from ade_distill.core.schema import Sentence, read_sentences


def _spans(s: Sentence) -> set[tuple[str, int, int]]:
    return {(e.label, e.start, e.end) for e in s.entities}


def _pairs(s: Sentence) -> set[tuple[int, int, int, int]]:
    ent = {e.id: e for e in s.entities}
    return {(ent[r.drug].start, ent[r.drug].end, ent[r.ade].start, ent[r.ade].end) for r in s.relations}


def _overlapping(span: tuple[str, int, int], spans: set[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    lab, a, b = span
    return [x for x in spans if x[0] == lab and x[1] < b and a < x[2]]


def breakdown(gold: list[Sentence], pred: dict[str, Sentence]) -> dict[str, int]:
    c = dict.fromkeys(["rel_tp", "rel_fp_pairing", "rel_fp_span", "rel_fn", "ent_tp", "boundary_longer",
                       "boundary_shorter", "spurious", "missed"], 0)
    for g in gold:
        p = pred.get(g.id)
        if p is None:
            raise SystemExit(f"sentence {g.id} has no prediction")
        gs, ps, gp, pp = _spans(g), _spans(p), _pairs(g), _pairs(p)
        for d0, d1, a0, a1 in pp - gp:
            both_gold = ("DRUG", d0, d1) in gs and ("ADE", a0, a1) in gs
            c["rel_fp_pairing" if both_gold else "rel_fp_span"] += 1
        c["rel_tp"] += len(pp & gp)
        c["rel_fn"] += len(gp - pp)
        c["ent_tp"] += len(gs & ps)
        for span in ps - gs:
            over = _overlapping(span, gs)
            if not over:
                c["spurious"] += 1
            elif span[2] - span[1] > over[0][2] - over[0][1]:
                c["boundary_longer"] += 1
            else:
                c["boundary_shorter"] += 1
        c["missed"] += sum(1 for span in gs - ps if not _overlapping(span, ps))
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gold", required=True)
    ap.add_argument("pred", nargs="+")
    args = ap.parse_args()
    gold = list(read_sentences(args.gold))
    keys = None
    for path in args.pred:
        c = breakdown(gold, {s.id: s for s in read_sentences(path)})
        if keys is None:
            keys = list(c)
            print("file\t" + "\t".join(keys))
        print(path + "\t" + "\t".join(str(c[k]) for k in keys))


if __name__ == "__main__":
    main()
