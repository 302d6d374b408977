import json

import pytest

from ade_distill.cli import main
from ade_distill.core.schema import SchemaError, read_sentences


def test_pack_has_no_text_and_unpacks_exactly(tmp_path, sample_dir):
    gold = sample_dir / "gold.jsonl"
    packed = tmp_path / "p.jsonl"
    assert main(["labels", "pack", "--in", str(gold), "--out", str(packed)]) == 0
    body = packed.read_text()
    sents = list(read_sentences(gold))
    assert not any(s.text in body for s in sents)
    assert not any(f'"{e.text}"' in body for s in sents for e in s.entities if len(e.text) > 3)
    out = tmp_path / "u.jsonl"
    assert main(["labels", "unpack", "--in", str(packed), "--sentences", str(gold), "--out", str(out)]) == 0
    back = list(read_sentences(out))
    key = lambda s: ({(e.label, e.start, e.end) for e in s.entities},  # noqa: E731
                     {(s.entity(r.drug).start, s.entity(r.ade).start) for r in s.relations})
    assert [key(b) for b in back] == [key(s) for s in sents]


def test_unpack_refuses_a_changed_text(tmp_path, sample_dir, capsys):
    gold = sample_dir / "gold.jsonl"
    packed = tmp_path / "p.jsonl"
    main(["labels", "pack", "--in", str(gold), "--out", str(packed)])
    lines = gold.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["text"] = rec["text"].replace("woman", "womAn")
    (tmp_path / "g.jsonl").write_text(json.dumps(rec) + "\n")
    with pytest.raises(SchemaError, match="p.jsonl:1: .*text differs"):
        from ade_distill.core.labels import read_unpacked

        list(read_unpacked(packed, read_sentences(tmp_path / "g.jsonl")))
