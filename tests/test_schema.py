import json
from pathlib import Path

import pytest

from ade_distill.core.schema import (Entity, Relation, SchemaError, Sentence, atomic_open,
                                read_sentences, write_jsonl)

TEXT = "Codeine intoxication in the neonate."


def good() -> dict:
    return {"id": "s1", "doc_id": "d1", "text": TEXT, "doc_offset": 10,
            "entities": [{"id": "e0", "label": "ADE", "start": 0, "end": 20, "text": "Codeine intoxication"},
                         {"id": "e1", "label": "DRUG", "start": 0, "end": 7, "text": "Codeine", "confidence": 0.9}],
            "relations": [{"drug": "e1", "ade": "e0"}], "source": "gold", "meta": {"pmid": "1"}}


def write_lines(path: Path, records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_roundtrip_keeps_every_field(tmp_path):
    s = Sentence.model_validate(good())
    out = tmp_path / "x.jsonl"
    assert write_jsonl(out, [s, s.model_copy(update={"id": "s2"})]) == 2
    back = list(read_sentences(out))
    assert [b.id for b in back] == ["s1", "s2"]
    assert back[0] == s
    assert back[0].entity("e1").confidence == 0.9
    assert back[0].doc_span == (10, 10 + len(TEXT))


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r["entities"][0].update(text="codeine intoxication"), "text 'codeine intoxication' != text[0:20]"),
    (lambda r: r["entities"][1].update(end=99, text="x"), "runs past the end"),
    (lambda r: r["relations"].append({"drug": "e1", "ade": "e7"}), "missing ade entity 'e7'"),
    (lambda r: r["relations"].append({"drug": "e0", "ade": "e0"}), "has label ADE, expected DRUG"),
    (lambda r: r["entities"][1].update(label="DOSE"), "entities.1.label"),
    (lambda r: r.update(source="silver"), "source 'silver'"),
    (lambda r: r["entities"][1].update(confidence=1.5), "confidence"),
    (lambda r: r["entities"].append(dict(r["entities"][0])), "duplicate entity id 'e0'"),
    (lambda r: r.update(extra_field=1), "extra_field"),
])
def test_reader_rejects_bad_record_naming_file_line_and_id(tmp_path, mutate, expected):
    bad = good()
    bad["id"] = "bad-7"
    mutate(bad)
    path = write_lines(tmp_path / "in.jsonl", [good(), bad])
    with pytest.raises(SchemaError) as err:
        list(read_sentences(path))
    msg = str(err.value)
    assert f"{path}:2:" in msg and "'bad-7'" in msg and expected in msg


def test_invalid_json_and_non_object_lines(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", [good(), "{not json", "[1, 2]"])
    errors = []
    got = list(read_sentences(path, on_error=errors.append))
    assert [s.id for s in got] == ["s1"]
    assert len(errors) == 2
    assert f"{path}:2: invalid JSON" in str(errors[0])
    assert f"{path}:3: expected a JSON object" in str(errors[1])


def test_undecodable_bytes_named(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(json.dumps(good()).encode() + b"\n\xff\xfe garbage\n")
    with pytest.raises(SchemaError, match=r"bin.jsonl:2: not UTF-8"):
        list(read_sentences(path))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        list(read_sentences("nope.jsonl"))


def test_reader_streams_line_by_line(tmp_path):
    # A bad record at the end is only met after earlier records were handed out.
    path = write_lines(tmp_path / "in.jsonl", [good(), "{oops"])
    it = read_sentences(path)
    assert next(it).id == "s1"
    with pytest.raises(SchemaError):
        next(it)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")

    def records():
        yield Sentence.model_validate(good())
        raise RuntimeError("stage crashed")

    with pytest.raises(RuntimeError):
        write_jsonl(out, records())
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_open_creates_parent(tmp_path):
    out = tmp_path / "a" / "b" / "f.txt"
    with atomic_open(out) as fh:
        fh.write("ok")
    assert out.read_text() == "ok"


def test_entity_and_relation_models():
    with pytest.raises(ValueError):
        Entity(id="e", label="DRUG", start=5, end=5, text="")
    r = Relation(drug="a", ade="b", confidence=0.5)
    assert r.confidence == 0.5
