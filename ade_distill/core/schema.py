"""The records every stage reads and writes, and streaming JSONL I/O for them.

One sentence per JSONL line::

    {"id", "doc_id", "text", "doc_offset", "entities": [...], "relations": [...],
     "source", "meta"}

Entity offsets are character offsets into the sentence ``text``, end-exclusive.
``doc_offset`` is where the sentence starts inside its document (``None`` when the
source does not say, e.g. ADE-NEG.txt, whose abstracts are not released).
``source`` is "gold", "teacher:<model>", "student:<name>", "synthetic:<model>" (a sentence the
teacher wrote, with its labels), or "unlabeled" for sentences
fresh from ingestion that nobody has annotated yet (so they are never mistaken for gold
sentences without ADEs).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InputError

LABELS: tuple[str, ...] = ("DRUG", "ADE")
Label = Literal["DRUG", "ADE"]
_SOURCE_RE = re.compile(r"^(gold|unlabeled|teacher:.+|student:.+|synthetic:.+)$")


class SchemaError(InputError):
    """A record that breaks the schema; the message names the file, line and record id."""


class Entity(BaseModel):
    """A DRUG or ADE mention: ``text == sentence.text[start:end]``."""

    model_config = ConfigDict(extra="forbid")

    id: str
    label: Label
    start: int = Field(ge=0)
    end: int = Field(gt=0)
    text: str
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> "Entity":
        if self.end <= self.start:
            raise ValueError(f"entity {self.id!r}: end {self.end} <= start {self.start}")
        return self


class Relation(BaseModel):
    """A drug -> adverse effect link between two entities of the same sentence."""

    model_config = ConfigDict(extra="forbid")

    drug: str
    ade: str
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Sentence(BaseModel):
    """One sentence with its annotations; the unit every stage reads and writes."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    doc_id: str
    text: str
    doc_offset: int | None = Field(default=None, ge=0)
    entities: list[Entity] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)
    source: str = "gold"
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "Sentence":
        if not _SOURCE_RE.match(self.source):
            raise ValueError(
                f"source {self.source!r} must be 'gold', 'unlabeled', 'teacher:<model>', "
                f"'student:<name>' or 'synthetic:<model>'"
            )
        ids: dict[str, Entity] = {}
        for ent in self.entities:
            if ent.id in ids:
                raise ValueError(f"duplicate entity id {ent.id!r}")
            if ent.end > len(self.text):
                raise ValueError(
                    f"entity {ent.id!r} [{ent.start}:{ent.end}] runs past the end of the "
                    f"text ({len(self.text)} chars)"
                )
            found = self.text[ent.start : ent.end]
            if found != ent.text:
                raise ValueError(
                    f"entity {ent.id!r} text {ent.text!r} != text[{ent.start}:{ent.end}] {found!r}"
                )
            ids[ent.id] = ent
        for rel in self.relations:
            for role, want in (("drug", "DRUG"), ("ade", "ADE")):
                eid = getattr(rel, role)
                if eid not in ids:
                    raise ValueError(f"relation names missing {role} entity {eid!r}")
                if ids[eid].label != want:
                    raise ValueError(
                        f"relation {role} entity {eid!r} has label {ids[eid].label}, expected {want}"
                    )
        return self

    def entity(self, eid: str) -> Entity:
        """The entity with id ``eid`` (KeyError if absent)."""
        for ent in self.entities:
            if ent.id == eid:
                return ent
        raise KeyError(eid)

    @property
    def doc_span(self) -> tuple[int, int] | None:
        """(start, end) of the sentence inside its document, when known."""
        if self.doc_offset is None:
            return None
        return self.doc_offset, self.doc_offset + len(self.text)


class Document(BaseModel):
    """A raw input document before sentence splitting."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    title: str = ""
    text: str
    source: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def full_text(self) -> str:
        """Title and body joined the way offsets count them (title, blank line, text)."""
        if self.title and self.text:
            return f"{self.title}\n\n{self.text}"
        return self.title or self.text


M = TypeVar("M", bound=BaseModel)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", str(exc)).removeprefix("Value error, ")
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {msg}{more}" if loc else f"{msg}{more}"


def parse_record(model: type[M], raw: str | dict, *, path: str | os.PathLike = "<memory>",
                 line: int = 0) -> M:
    """Validate one record; raise SchemaError naming the file, line and record id."""
    rid = "?"
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(data, dict):
            raise SchemaError(f"{path}:{line}: expected a JSON object, got {type(data).__name__}")
        rid = str(data.get("id", "?"))
        return model.model_validate(data)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}:{line}: invalid JSON: {exc.msg} at column {exc.colno}") from exc
    except ValidationError as exc:
        raise SchemaError(f"{path}:{line}: record {rid!r}: {_first_error(exc)}") from exc


def unique_ids(records: Iterable[M], where: str) -> Iterator[M]:
    """Pass records through, raising SchemaError at the first id seen twice.

    The one id rule of every file a stage reads or writes: a duplicate id would make one
    record overwrite another downstream (labels, predictions, scores), so it is an error,
    never a silent overwrite. Memory: one set of ids.
    """
    seen: set[str] = set()
    for k, rec in enumerate(records, 1):
        rid = getattr(rec, "id", None)
        if rid is not None:
            if rid in seen:
                raise SchemaError(f"{where}: record {k}: duplicate id {rid!r}")
            seen.add(rid)
        yield rec


def utf8_lines(path: str | os.PathLike, on_error: Callable[[SchemaError], None] | None = None
               ) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, decoded one by one so an error names its own line; a
    line that is not UTF-8 raises SchemaError, or goes to ``on_error`` and is skipped."""
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                err = SchemaError(f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start})")
                if on_error is None:
                    raise err from exc
                on_error(err)
                continue
            yield lineno, text


def _read(model: type[M], path: str | os.PathLike, on_error: Callable[[SchemaError], None] | None
          ) -> Iterator[M]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a JSONL file")
    seen: dict[str, int] = {}
    for lineno, raw in utf8_lines(path, on_error):
        if not raw.strip():
            continue
        try:
            rec = parse_record(model, raw, path=path, line=lineno)
            rid = getattr(rec, "id", None)
            if rid in seen:
                raise SchemaError(f"{path}:{lineno}: duplicate id {rid!r} (first at line {seen[rid]})")
            seen[rid] = lineno
            yield rec
        except SchemaError as exc:
            if on_error is None:
                raise
            on_error(exc)


def read_sentences(path: str | os.PathLike,
                   on_error: Callable[[SchemaError], None] | None = None) -> Iterator[Sentence]:
    """Stream Sentences from a JSONL file, validating each.

    A bad record raises SchemaError, or, when ``on_error`` is given, is passed to it and
    skipped so the rest of the file is still read.
    """
    return _read(Sentence, path, on_error)


def read_documents(path: str | os.PathLike,
                   on_error: Callable[[SchemaError], None] | None = None) -> Iterator[Document]:
    """Stream Documents from a JSONL file (see read_sentences for errors)."""
    return _read(Document, path, on_error)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
                ) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and rename it over ``path`` on success.

    If the block raises, the temporary file is removed and ``path`` is left as it was,
    so no reader ever sees a half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dump_record(rec: BaseModel) -> str:
    """One compact JSON line (no trailing newline); optional Nones are left out."""
    return json.dumps(rec.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


def write_jsonl(path: str | os.PathLike, records: Iterable[BaseModel]) -> int:
    """Stream records to ``path`` atomically; return how many were written.

    A duplicate id raises SchemaError and leaves ``path`` as it was."""
    n = 0
    with atomic_open(path) as fh:
        for rec in unique_ids(records, str(path)):
            fh.write(dump_record(rec))
            fh.write("\n")
            n += 1
    return n
