import pytest

from ade_distill.ingest import InputError, Problems, ingest_text


def test_folder_of_txt_files(tmp_path):
    (tmp_path / "a.txt").write_text("Rash after amoxicillin.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Second note.")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 latte")
    problems = Problems()
    docs = list(ingest_text(tmp_path, problems=problems))
    assert [d.id for d in docs] == ["a", "sub/b"]
    assert len(problems) == 2
    assert any("bad.txt: not UTF-8" in m for m in problems.messages)
    assert any("empty.txt: empty document" in m for m in problems.messages)


def test_csv_with_named_columns(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('note_id,body,ward\n1,"Pt on warfarin, INR 9.",A\n2,,B\n1,dup,C\n3,"Line one.\nLine two.",C\n')
    problems = Problems()
    docs = list(ingest_text(path, id_column="note_id", text_column="body", problems=problems))
    assert [(d.id, d.meta) for d in docs] == [("1", {"ward": "A"}), ("3", {"ward": "C"})]
    assert docs[1].text == "Line one.\nLine two."
    assert len(problems) == 2 and "notes.csv:3: record '2': empty document" in problems.messages[0]
    assert "duplicate id '1'" in problems.messages[1]


def test_csv_without_the_named_column(tmp_path):
    path = tmp_path / "notes.tsv"
    path.write_text("id\tcontent\n1\tx\n")
    with pytest.raises(InputError, match=r"notes.tsv: no column 'text' \(columns: id, content\)"):
        list(ingest_text(path))


def test_jsonl(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "d1", "text": "Hives on penicillin."}\n{bad\n{"id": "d2"}\n{"id": 3, "text": "x", "meta": {"k": 1}}\n')
    problems = Problems()
    docs = list(ingest_text(path, problems=problems))
    assert [(d.id, d.meta) for d in docs] == [("d1", {}), ("3", {"k": 1})]
    assert [m.split(": ")[0].rsplit(":", 1)[1] for m in problems.messages] == ["2", "3"]


def test_missing_and_unknown(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        ingest_text(tmp_path / "none")
    (tmp_path / "x.pdf").write_text("x")
    with pytest.raises(InputError, match="unknown input type '.pdf'"):
        ingest_text(tmp_path / "x.pdf")
