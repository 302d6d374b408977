"""BioScope (Vincze et al. 2008): sentences with negation and speculation cues and their scopes,
as character offsets, for measuring the assertion flags (post/assertion.py).

A sentence element holds text with nested ``<xcope id>`` and ``<cue type="negation|speculation"
ref="scope id">`` elements; a scope's type is its cue's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from . import InputError


@dataclass
class BioScopeSentence:
    id: str
    doc_id: str
    text: str
    cues: list[tuple[str, int, int, str]] = field(default_factory=list)  # (type, start, end, scope id)
    scopes: dict[str, tuple[int, int]] = field(default_factory=dict)  # scope id -> (start, end)

    def has(self, kind: str) -> bool:
        return any(c[0] == kind for c in self.cues)

    def scope_spans(self, kind: str) -> list[tuple[int, int]]:
        ids = {c[3] for c in self.cues if c[0] == kind}
        return [self.scopes[i] for i in ids if i in self.scopes]


def read_bioscope(path: str | Path) -> Iterator[BioScopeSentence]:
    """Every sentence of a BioScope XML file (abstracts.xml, full_papers.xml)."""
    from lxml import etree

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        tree = etree.parse(str(path), etree.XMLParser(load_dtd=False, resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise InputError(f"{path}:{exc.lineno}: not BioScope XML ({exc.msg})") from None
    for doc in tree.iter("Document"):
        doc_id = (doc.findtext("DocID") or "").strip()
        for el in doc.iter("sentence"):
            s = BioScopeSentence(el.get("id", ""), doc_id, "")
            parts: list[str] = []

            def walk(node, parts=parts, s=s) -> None:
                start = sum(len(p) for p in parts)
                if node.text:
                    parts.append(node.text)
                for child in node:
                    walk(child)
                    if child.tail:
                        parts.append(child.tail)
                end = sum(len(p) for p in parts)
                if node.tag == "xcope":
                    s.scopes[node.get("id", "")] = (start, end)
                elif node.tag == "cue":
                    s.cues.append((node.get("type", ""), start, end, node.get("ref", "")))

            walk(el)
            s.text = "".join(parts)
            yield s
