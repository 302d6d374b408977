"""The settings of each pipeline stage, one pydantic class per stage, defaults stated once.

A pipeline file (`ade-distill run`) is these classes under one root (``pipeline.settings``); the
workflows take them as they are, so a stage behaves the same from ``run`` and from Python.
Unknown keys are errors that name the file, key and line (``config.load_yaml_model``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..apps.federate import FederateSettings
from ..student.distill import CompressConfig
from ..student.train import TrainConfig
from ..teacher.labeler import TeacherConfig
from ..post.chain import PostConfig
from ..teacher.views import AggregateConfig, RepairConfig


class InputsConfig(BaseModel):
    """Where the sentences come from. ``kind`` picks which other keys apply."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sample", "ade-splits", "jsonl", "pubmed"]
    # sample: data/sample, split by document into train (teacher-labelled) and test (gold)
    test_share: float = Field(default=0.35, gt=0, lt=1)
    # ade-splits: SpERT folds of ADE-Corpus-V2 (default ../shared/data/ade_splits)
    source: str | None = None
    fold: int = Field(default=0, ge=0, le=9)
    # the 10-fold protocol: "all" (or a list of fold numbers) runs ingest, label, train, evaluate and
    # report once per fold under <run_dir>/fold-<k>/, then one aggregate stage joins the
    # out-of-fold predictions and writes the k-fold report
    folds: Literal["all"] | list[int] | None = None
    # jsonl: your own sentence files (train: to label; test: gold, optional)
    train: str | None = None
    test: str | None = None
    # pubmed: an E-utilities query and/or PubMed XML / MEDLINE files
    query: str | None = None
    files: list[str] = Field(default_factory=list)
    max_records: int = Field(default=200, ge=1)
    api_key_env: str | None = "NCBI_API_KEY"
    email: str | None = None
    eutils_url: str | None = None
    # any kind: take only the first N train sentences (file order)
    train_limit: int | None = Field(default=None, ge=1)
    # new documents to extract ADEs from at the end (a .txt folder, CSV/TSV, JSONL or PubMed XML)
    documents: list[str] = Field(default_factory=list)
    # in-domain text the benchmark never tests on, without gold labels: for the teacher to label
    # (students with in_domain: true add those labels to their training) and as transfer data for a
    # second stage. "ade-neg": the ADE-NEG sentences of ADE-Corpus-V2 documents with no sentence
    # in the test fold (kind ade-splits; the raw corpus folder ade_corpus_v2 beside the splits),
    # shuffled with seed 0; or a sentence JSONL file. in_domain_limit: the first N of them.
    in_domain: str | None = None
    in_domain_limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> "InputsConfig":
        if self.kind == "jsonl" and not self.train:
            raise ValueError("kind jsonl needs train (sentences to label)")
        if self.kind == "pubmed" and not (self.query or self.files):
            raise ValueError("kind pubmed needs query or files")
        if self.folds is not None:
            if self.kind != "ade-splits":
                raise ValueError("folds needs kind ade-splits")
            if isinstance(self.folds, list):
                if not self.folds or len(set(self.folds)) != len(self.folds) or not all(0 <= k <= 9 for k in self.folds):
                    raise ValueError(f"folds {self.folds}: distinct fold numbers from 0 to 9")
            if self.documents:
                raise ValueError("documents (extraction) is not run with folds: use a single-fold pipeline")
            if self.in_domain:
                raise ValueError("in_domain is not run with folds: use a single-fold pipeline")
        if self.in_domain == "ade-neg" and self.kind != "ade-splits":
            raise ValueError("in_domain: ade-neg needs kind ade-splits (its documents outside the test fold)")
        if self.in_domain_limit and not self.in_domain:
            raise ValueError("in_domain_limit needs in_domain")
        return self

    def fold_list(self) -> list[int]:
        return list(range(10)) if self.folds == "all" else sorted(self.folds or [])


class ViewSpec(BaseModel):
    """Another reading of the same sentences by a teacher (another prompt, wording or model)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    teacher: str | TeacherConfig
    seed_labels: str | list[str] | None = None
    seed_test_labels: str | list[str] | None = None
    # the k-shot teacher of the hybrid: its shots are the pipeline's first k gold train sentences
    # (gold order), each input shown the prompt.retrieve (default 4) most like it
    shots_gold_k: int | None = Field(default=None, ge=1)
    parts: list[Literal["train", "test"]] = ["train", "test"]  # what this view labels


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    teacher: str | TeacherConfig = "pipelines/teachers/qwen1.5b-local.yaml"
    # packed labels (ade-distill labels pack) to start the train / test part from: one file or several
    # (with folds, the teacher labels of the whole corpus: each fold takes the sentences it has)
    seed_labels: str | list[str] | None = None
    seed_test_labels: str | list[str] | None = None
    seed_in_domain_labels: str | list[str] | None = None  # for inputs.in_domain
    soft: Literal["none", "rescore"] = "none"  # rescore: logprob confidences from the local GGUF model
    label_test: bool = True  # label the test part too, so the teacher is scored beside the students
    # false: never call the teacher; only the seed labels are used (a train sentence they lack is
    # left out, a test sentence they lack counts as the teacher predicting nothing), so a run
    # from committed labels cannot start an LLM, whatever the seeds miss
    call_teacher: bool = True
    checkpoint_every: int = Field(default=25, ge=1)
    # more readings of the same sentences (teacher/views.py): each view labels the train and test
    # parts like the teacher above; the students learn from all of them aggregated (``aggregate``),
    # and each view and the aggregate are scored beside the teacher
    views: list[ViewSpec] = Field(default_factory=list)
    # the views the students learn from ("teacher" and view names; default all of them, aggregated);
    # the others are still labelled and scored beside the teacher
    train_views: list[str] | None = None
    aggregate: AggregateConfig = Field(default_factory=AggregateConfig)
    # corpus-level repairs of the train labels (teacher/consistency.py), after aggregation; no gold
    repair: RepairConfig = Field(default_factory=RepairConfig)

    @model_validator(mode="after")
    def _views(self) -> "LabelConfig":
        names = [v.name for v in self.views]
        if len(set(names)) < len(names) or "teacher" in names:
            raise ValueError(f"views: names must be distinct and not 'teacher' ({names})")
        if self.train_views is not None:
            unknown = sorted(set(self.train_views) - {"teacher", *names})
            if unknown or not self.train_views or len(set(self.train_views)) < len(self.train_views):
                raise ValueError(f"train_views {self.train_views}: distinct names of 'teacher' and the views {names}")
        if self.views and self.soft == "rescore":
            raise ValueError("views: soft: rescore is for one teacher; give each view confidence: logprobs")
        return self


class FederatedSpec(FederateSettings):
    """A student distilled across sites (``students.<name>.federated``): the train sentences split
    over ``sites`` site folders, each read only by its own Flower worker; weights only aggregated."""

    sites: int = Field(ge=2)
    # iid: documents dealt at random; by-document: contiguous runs of document ids (e.g. PMID
    # ranges, as sites with their own archives); by-drug: documents grouped by their first
    # teacher-labelled drug, groups in name order (each site sees other drugs)
    split: Literal["iid", "by-document", "by-drug"] = "iid"
    seed: int = 13


class SynthesizeSpec(BaseModel):
    """The pipeline's ``synthesize`` stage: the teacher writes checked ADE sentences, seeded by the
    teacher labels of the train sentences (``ade-distill synthesize``)."""

    model_config = ConfigDict(extra="forbid")
    # a committed file of teacher-written sentences (ade-distill synthesize) used as it is instead of
    # generating: one pool serves several folds when it was seeded outside all their test parts
    pool: str | None = None
    n: int = Field(default=1000, ge=1)
    max_tries: float = Field(default=4.0, ge=1)
    drugs: list[str] = []  # name lists beyond the corpus (paths)
    effects: list[str] = []
    seed: int = 13
    near_duplicate: float = Field(default=0.5, gt=0, le=1)
    temperature: float = Field(default=0.8, ge=0)
    answer: Literal["json", "plain"] = "plain"  # ade-distill synthesize --answer


class StudentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Literal["teacher", "teacher-hard", "gold", "hybrid"] = "teacher"
    config: TrainConfig = Field(default_factory=TrainConfig)
    # a gold budget (issue #30's hybrid): the first gold_k sentences of the train part in the
    # pipeline's gold order (gold_seed), with their gold labels. labels: hybrid learns the teacher's
    # labels with these k in place of the teacher's (each gold_repeat times); labels: gold with
    # gold_k learns the k alone (the supervised-on-k reference). The ids are in the manifest.
    gold_k: int | None = Field(default=None, ge=1)
    gold_repeat: int = Field(default=1, ge=1)
    # a second stage: continue from an earlier student's weights (encoder and heads) instead of a
    # fresh head on config.model; with labels: gold and gold_k, the two-stage hybrid (the distilled
    # student fine-tuned on the k gold sentences). config's training settings apply; its encoder
    # settings (model, layers) are the earlier student's.
    start_from: str | None = None
    # self-training: the trained student labels the train sentences past inputs.train_limit
    # (never shown to the teacher) and a second model is trained on both; no gold is involved
    self_train: bool = False
    self_train_epochs: int | None = Field(default=None, ge=1)  # the second round's epochs (default: config's)
    self_train_from: str | None = None  # an earlier student whose model is round 1 (saves training it again)
    # a document-grouped share of this student's own labelled sentences held out as dev: the epoch
    # kept is the one that agrees best with those labels (a distilled student's are the teacher's:
    # no gold label chooses it), and training stops early after config.patience worse epochs
    dev_share: float | None = Field(default=None, gt=0, lt=0.5)
    # second-stage (self-)distillation: this student learns the logits, hidden states and attentions
    # of an earlier student (``distill_from``) on the same labelled sentences, with their labels as
    # the hard targets; as many layers as the earlier student ("born again") unless distill.layers
    # says fewer. No LLM call and no gold label unless the labels are gold. ``config`` is not used.
    # A list of earlier students is an ensemble: their mean tag and pair probabilities are the
    # soft targets (hidden states and attentions: the first one's, which the new student starts from).
    distill_from: str | list[str] | None = None
    distill: CompressConfig | None = None
    # inputs.in_domain: a student learning from the teacher adds the teacher's labels of the
    # in-domain sentences to its train sentences; a second stage (distill_from) takes the in-domain
    # sentences as transfer data, labelled by the student it learns from (no LLM call)
    in_domain: bool = False
    # the first N sentences the synthesize stage kept (in seed order) join the train sentences
    synthetic: int = Field(default=0, ge=0)
    # distilled across sites on Flower instead of on one machine (apps/federate.py)
    federated: FederatedSpec | None = None

    def teachers(self) -> list[str]:
        """The earlier students this one is distilled from (none, one, or an ensemble)."""
        d = self.distill_from
        return [] if d is None else [d] if isinstance(d, str) else list(d)

    def how_made(self) -> str:
        """One sentence for the report: what this student learned from and how its model was chosen."""
        if self.labels == "gold" and self.gold_k and self.start_from:
            return (f"two-stage hybrid: {self.start_from} (its own recipe) fine-tuned on {self.gold_k} gold train "
                    "sentences (named in the manifest); a fixed recipe, last epoch kept")
        if self.labels == "gold" and self.gold_k:
            return f"gold labels on {self.gold_k} train sentences alone (the supervised-on-k reference)"
        if self.labels == "gold":
            return "gold labels on the train sentences: a reference for what the teacher's label noise costs, not a distilled student"
        if self.labels == "hybrid":
            return (f"hybrid: the teacher's labels with {self.gold_k} gold sentences in place of the teacher's "
                    f"(each {self.gold_repeat}x, named in the manifest); a fixed recipe, last epoch kept")
        kind = "the teacher's labels" + (" (hard)" if self.labels == "teacher-hard" else "")
        if self.teachers():
            more = (" and on the in-domain sentences (labelled by the first of them: transfer data)"
                    if self.in_domain else "")
            return (f"second stage: learns {' + '.join(self.teachers())}'s outputs on the sentences with {kind}{more}; "
                    "settings fixed in the pipeline file, last epoch kept, nothing chosen on a score")
        if self.in_domain:
            kind += " (train and in-domain sentences)"
        if self.dev_share:
            return (f"{kind}; the epoch kept is the one that agrees best with {kind} on a {self.dev_share:.0%} "
                    "dev share of its own train sentences (no gold)")
        extra = "; self-trained on the student's own labels of the unlabelled sentences" if self.self_train else ""
        return f"{kind}{extra}; a fixed recipe, last epoch kept, nothing chosen on a score"


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bootstrap: int = Field(default=1000, ge=0)
    seed: int = 13
    threads: int | None = None  # CPU threads for the students' predictions


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = "Adverse drug event extraction: teacher and student"
    excerpts: bool = True  # False leaves every sentence text out of the report
    # with folds: a folder (e.g. reports/ade_10fold) that receives copies of the k-fold report, the
    # out-of-fold metrics and the out-of-fold predictions packed without sentence text
    publish: str | None = None


class ExtractConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    student: str | None = None  # which student extracts; default: the first one
    quantize: Literal["none", "int8"] = "none"
    # ADE record files written (extract/ades.<format>): names in registry.writers (a plug-in's too)
    formats: list[str] = Field(default_factory=lambda: ["jsonl", "csv"], min_length=1)
    # after extraction: substances, MedDRA coding, assertion flags (post/chain.py)
    post: PostConfig = Field(default_factory=PostConfig)
