"""A spaCy component: ``nlp.add_pipe("ade_distill", config={"model": PATH})``.

It runs a trained student over each doc (batched through ``nlp.pipe``) and adds:
- ``doc.spans["ade"]``: every DRUG and ADE span (they may overlap: "Codeine intoxication");
- ``doc.ents``: the same spans where they do not overlap (the longest wins);
- ``doc._.ade_relations``: (drug span, ADE span, confidence) for each drug -> effect pair;
- on each span: ``span._.ade_confidence``, and after the post-processing chain when configured
  (``drugs``, ``products``, ``meddra``, ``assertion`` in the config, as `extract` takes them):
  ``span._.substance``, ``span._.drugbank_id``, ``span._.meddra_pt``, ``span._.meddra_pt_code``,
  ``span._.meddra_soc``, ``span._.assertion``.

spaCy finds the factory through the ``spacy_factories`` entry point once the package is installed.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

SPAN_ATTRS = ("ade_confidence", "substance", "drugbank_id", "meddra_pt", "meddra_pt_code", "meddra_soc", "assertion")
if not Doc.has_extension("ade_relations"):
    Doc.set_extension("ade_relations", default=None)
for _attr in SPAN_ATTRS:
    if not Span.has_extension(_attr):
        Span.set_extension(_attr, default=None)


class AdeDistillComponent:
    def __init__(self, nlp: Language, name: str, model: str, batch_size: int = 32, threads: int | None = None,
                 runtime: str = "torch", quantize: str | None = None, drugs: str | None = None,
                 products: str | None = None, meddra: str | None = None, assertion: bool = False) -> None:
        from ..post.chain import PostConfig, PostProcessor
        from ..student import Student

        self.name = name
        self.student = Student.from_pretrained(model, batch_size=batch_size, threads=threads, runtime=runtime,
                                               quantize=quantize)
        self.post = PostProcessor.from_config(PostConfig(drugs=drugs, products=products, meddra=meddra,
                                                         assertion=assertion))

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        from ..core.schema import Document

        buf: list[Doc] = []
        for doc in docs:
            buf.append(doc)
            if len(buf) >= batch_size:
                yield from self._annotate(buf, Document)
                buf = []
        if buf:
            yield from self._annotate(buf, Document)

    def _annotate(self, docs: list[Doc], Document) -> Iterator[Doc]:
        documents = [Document(id=str(i), text=d.text, source="spacy") for i, d in enumerate(docs)]
        for (document, sents), doc in zip(self.student.extract_documents(documents), docs):
            sents = self.post.apply(document, sents)
            spans, rels, by_id = [], [], {}
            for s in sents:
                post = s.meta.get("post", {})
                for e in s.entities:
                    span = doc.char_span(s.doc_offset + e.start, s.doc_offset + e.end, label=e.label,
                                         alignment_mode="expand")
                    if span is None:
                        continue
                    span._.ade_confidence = e.confidence
                    for k, v in post.get(e.id, {}).items():
                        if k in SPAN_ATTRS:
                            span._.set(k, v)
                    spans.append(span)
                    by_id[(s.id, e.id)] = span
                for r in s.relations:
                    d, a = by_id.get((s.id, r.drug)), by_id.get((s.id, r.ade))
                    if d is not None and a is not None:
                        rels.append((d, a, r.confidence))
            doc.spans["ade"] = spans
            doc.ents = filter_spans(spans)
            doc._.ade_relations = rels
            yield doc


@Language.factory("ade_distill", default_config={"model": None, "batch_size": 32, "threads": None, "runtime": "torch",
                                                 "quantize": None, "drugs": None, "products": None, "meddra": None,
                                                 "assertion": False})
def make_component(nlp: Language, name: str, model: str | None, batch_size: int, threads: int | None, runtime: str,
                   quantize: str | None, drugs: str | None, products: str | None, meddra: str | None,
                   assertion: bool) -> AdeDistillComponent:
    if not model:
        from ..core.config import ConfigError

        raise ConfigError('ade_distill component: give config={"model": "path/to/student"}')
    return AdeDistillComponent(nlp, name, model, batch_size, threads, runtime, quantize, drugs, products, meddra, assertion)
