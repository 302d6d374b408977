"""Names vulture cannot see used, each for a reason (tests/test_architecture.py runs vulture with
this file; it is read, never imported): called by a framework or by name, or registered."""

# ruff: noqa
from ade_distill import cli, io, ingest, service
from ade_distill.student import extract, lowrank, model, onnx
from ade_distill.teacher import backends, labeler, settings
from ade_distill.workflows import settings as wsettings
from ade_distill.pipeline import settings as psettings
from ade_distill.core import schema, text, registry

# module __getattr__ / __dir__: the lazy public API of ade_distill/__init__.py
__getattr__
__dir__
# command handlers, found by name: globals()[f"cmd_{args.func}"]
cli.cmd_ingest_ade_corpus, cli.cmd_ingest_ade_splits, cli.cmd_ingest_pubmed, cli.cmd_ingest_text
cli.cmd_validate, cli.cmd_label, cli.cmd_teacher_serve, cli.cmd_teacher_rescore, cli.cmd_teacher_batch
cli.cmd_labels, cli.cmd_train, cli.cmd_compress, cli.cmd_predict, cli.cmd_extract, cli.cmd_review
cli.cmd_export_onnx, cli.cmd_screen, cli.cmd_serve, cli.cmd_evaluate, cli.cmd_folds, cli.cmd_report, cli.cmd_gate, cli.cmd_meddra_tune
cli.cmd_rank, cli.cmd_demo, cli.cmd_synthesize, cli.cmd_federate
# registered in registry.readers / writers / runtimes / teacher_backends (looked up by name)
ingest.PubmedReader, ingest.TextReader
io.CsvWriter, io.ParquetWriter, io.BratWriter
extract.load_torch, extract.load_onnx
backends.LocalServerBackend, backends.HFLocalBackend
backends.Backend  # the protocol every backend follows (documentation and type checking)
registry.Registry.unregister  # for plug-ins and tests
# pydantic: model_config and validators are read by pydantic itself
schema.Entity._ordered, schema.Sentence._consistent
settings.TeacherConfig._known_backend, settings.TeacherConfig._slots
wsettings.InputsConfig._needs, wsettings.LabelConfig._views, psettings.PipelineConfig._consistent
service.ExtractRequest._one
_.model_config
# torch modules: forward is called through __call__
lowrank.LowRankLinear.forward, model.AdeStudent.forward, model.RelationHead.forward, onnx.OnnxAdeStudent.forward
# attributes other libraries read (transformers config, onnxruntime session options)
_.intermediate_size, _.intra_op_num_threads, _.inter_op_num_threads, _.graph_optimization_level
# spaCy component registered with @Language.component
text.ade_sentence_rules
# FastAPI route handlers, registered with @app.get / @app.post
service.health
# counters and fields reported through dataclasses.asdict / to_json
labeler.LabelStats.sentences_in, labeler.LabelStats.fuzzy_matches, _.sentences_in, _.fuzzy_matches, _.misses
io.AdeRecord.sentence_id
schema.Sentence.doc_span
# public helpers used outside the package (tests, scripts/, benchmarks/)
from ade_distill.student import encoding
from ade_distill.teacher import consistency
from ade_distill.workflows import teacher as wteacher

encoding.split_joint  # tests/test_student.py
consistency.StringCounts.other_boundaries, consistency.Consistency.empty_answers  # the consistency table
consistency.Consistency.most_missed  # benchmarks/distill_gap_tables.py
wteacher.run_info_file  # scripts/teacher_info.py
# the records' post-processing fields, written through asdict (core/io.py)
io.AdeRecord.meddra_pt_code, io.AdeRecord.meddra_pt, io.AdeRecord.meddra_llt_code, io.AdeRecord.meddra_soc
from ade_distill.post import meddra as _meddra

_meddra.MeddraRelease.from_pairs  # benchmarks/pv_meddra.py: a dictionary from a coded dataset
# the spaCy component: extension attributes spaCy stores, the factory spaCy calls by name
_.ade_confidence, _.ade_relations
from ade_distill.apps import spacy_component

spacy_component.make_component
# BioScope, read to measure the assertion flags (benchmarks/pv_assertion.py)
from ade_distill.ingest import bioscope
from ade_distill.post import assertion

bioscope.read_bioscope, bioscope.BioScopeSentence.has, bioscope.BioScopeSentence.scope_spans
assertion.AssertionFlagger.word_flags
# the recipe-selection benchmarks' helpers (benchmarks/dev_selection.py, distill_gap_dev.py)
from ade_distill.evaluate import selection

selection.parse_variant, selection.strict_scores
# the MedDRA coder's optional LLM step, an opt-in library API measured by benchmarks/pv_meddra.py --rerank
from ade_distill.teacher import meddra_rerank

meddra_rerank.LlmReranker
