"""Every teacher setting, validated (``ade-distill label --teacher teacher.yaml``): the backend, the
model, the prompt and answer format, sampling, soft labels, retries, cache, prices and budget."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core.config import load_yaml_model
from ..core.registry import teacher_backends
from .prompts import FORMATS, AnswerFormat


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_per_1m: float
    output_per_1m: float


# Public list prices per 1M tokens (input/output) at the time of writing; override in config.
DEFAULT_PRICES = {
    "gpt-4o-mini": Price(input_per_1m=0.15, output_per_1m=0.60),
    "gpt-4o": Price(input_per_1m=2.50, output_per_1m=10.0),
    "gpt-4.1": Price(input_per_1m=2.0, output_per_1m=8.0),
    "gpt-4.1-mini": Price(input_per_1m=0.40, output_per_1m=1.60),
}


class PromptConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shots: str | None = None  # JSONL of gold example sentences; default data/prompts/few_shot.jsonl
    n_shots: int | None = Field(default=None, ge=0)
    # kNN few-shot: show each input only the `retrieve` shots most like it (TF-IDF cosine) out of the
    # shots file, e.g. a team's k annotated sentences (the hybrid of issue #30); unset: all of them
    retrieve: int | None = Field(default=None, ge=1)
    # the answer's shape: json (prompt ade-v2), lines, one "drug => effect" a line (ade-v3-lines),
    # or effects, the task asked effect first, one "effect <= drug" a line (ade-v4-effects)
    format: Literal["json", "lines", "effects"] = "json"

    @property
    def answer_format(self) -> AnswerFormat:
        return FORMATS[self.format]

    def shot_picker(self):
        """The few-shot examples each input is shown (prompts.ShotPicker)."""
        from .prompts import ShotPicker, load_shots

        return ShotPicker(load_shots(self.shots, self.n_shots), self.retrieve)


class TeacherConfig(BaseModel):
    """Every teacher setting, validated; `ade-distill label --teacher teacher.yaml`."""

    model_config = ConfigDict(extra="forbid")

    # a name in registry.teacher_backends: openai, local-server, hf-local, or a plug-in's
    backend: str = "local-server"
    model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # API model id, GGUF name/path, or HF id
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"  # the variable's name; the key itself never in config
    n_ctx: int = 2048  # per request (per slot)
    n_threads: int | None = None
    # local-server: which llama.cpp server; llama.cpp's own C++ server decodes `parallel` requests
    # at once (continuous batching); send that many at a time with `concurrency`.
    server: Literal["llama-cpp-python", "llama.cpp"] = "llama-cpp-python"
    parallel: int = Field(default=1, ge=1, le=64)
    server_args: list[str] = Field(default_factory=list)  # extra flags for the local server
    gguf_file: str | None = None  # hf-local: load a GGUF file from the model folder
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, gt=0)
    response_format: Literal["json_schema", "json_object", "none"] = "json_schema"
    confidence: Literal["logprobs", "self-consistency", "none"] = "logprobs"
    samples: int = Field(default=5, ge=1)
    sample_temperature: float = Field(default=0.7, gt=0.0, le=2.0)
    majority: float = Field(default=0.5, gt=0.0, le=1.0)
    concurrency: int = Field(default=1, ge=1, le=64)
    # seconds per HTTP request; default 120 for an API, 600 for a local server (on a busy machine a
    # long answer can take minutes, and waiting costs nothing)
    timeout: float | None = Field(default=None, gt=0.0)
    retries: int = Field(default=5, ge=0)
    retry_base_s: float = Field(default=1.0, ge=0.0)
    parse_retries: int = Field(default=2, ge=0)
    max_consecutive_errors: int = Field(default=3, ge=1)
    cache: str = "runs/teacher-cache.sqlite"
    prices: dict[str, Price] = Field(default_factory=dict)
    budget_usd: float | None = Field(default=None, ge=0.0)
    reference_model: str = "gpt-4o-mini"  # priced for the "what would the API cost" column
    fuzzy_threshold: float = Field(default=0.88, gt=0.0, le=1.0)
    # the PHI guard (teacher/phi.py) on every request that leaves the machine: redact identifiers
    # (typed placeholders, spans mapped back), block a sentence that holds one, or off (explicit,
    # logged). Unset: redact when the teacher is remote and the input is not PubMed; a local teacher
    # or a server on a loopback address needs no guard.
    phi: Literal["redact", "block", "off"] | None = None
    phi_allow: list[str] = Field(default_factory=list)  # more words never to redact (product names...)
    phi_drugs: str | None = None  # drug vocabulary folder (DrugBank open vocabulary, Drugs@FDA): names never redacted
    phi_terms: list[str] = Field(default_factory=list)  # files of reaction terms (one a line) never redacted
    phi_spacy_model: str | None = None  # spaCy English pipeline for names and places (default en_core_web_sm)
    # what stands in for an identifier: typed placeholders ("[NAME_1]"), surrogates, plain invented values
    # of the same type ("Alex Morgan", "1 March 2001"), or realistic stand-ins of the same kind and shape
    # ("Elijah Rich", "08/14/1981"; hiding in plain sight); reports/phi measures the teacher's F1 on each
    phi_placeholders: Literal["typed", "surrogate", "realistic"] = "typed"
    # with typed placeholders: a sentence that was redacted is followed by one line saying what the
    # bracketed placeholders are (never a drug or an effect), so the teacher does not fall silent
    phi_note: bool = False

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        import_module(".backends", __package__)  # registers the built-in backends

        if v not in teacher_backends:
            raise ValueError(f"unknown teacher backend {v!r} (known: {', '.join(teacher_backends.names())})")
        return v

    @model_validator(mode="after")
    def _slots(self) -> "TeacherConfig":
        if self.parallel > 1 and not (self.backend == "local-server" and self.server == "llama.cpp"):
            raise ValueError("parallel > 1 needs backend: local-server with server: llama.cpp "
                             "(llama-cpp-python's server answers one request at a time)")
        if not self.prompt.answer_format.json_grammar and self.response_format != "none":
            raise ValueError(f"prompt format {self.prompt.format!r} is not JSON: set response_format: none "
                             f"(a {self.response_format} response format would force a JSON answer)")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TeacherConfig":
        return load_yaml_model(path, cls)

    def price(self, model: str) -> Price | None:
        return {**DEFAULT_PRICES, **self.prices}.get(model)

    def cost_per_1k(self, model: str, sentences: int, prompt_tokens: int, completion_tokens: int) -> dict:
        """What 1,000 sentences cost at the tokens measured: at ``model``'s own price when it has
        one (billed), else at the reference model's (what the same tokens would cost on the API)."""
        if not sentences:
            return {}
        out = {"tokens_per_sentence": round((prompt_tokens + completion_tokens) / sentences, 1)}
        priced_as, basis = model, "billed"
        price = self.price(model)
        if price is None:
            priced_as, basis, price = self.reference_model, "reference", self.price(self.reference_model)
        if price is not None:
            usd = (prompt_tokens * price.input_per_1m + completion_tokens * price.output_per_1m) / 1e6
            out.update(cost_usd_per_1k_sentences=round(1000 * usd / sentences, 6), priced_as=priced_as,
                       cost_basis=basis)
        return out
