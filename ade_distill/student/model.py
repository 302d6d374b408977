"""The student: one encoder pass for BIO tagging (DRUG, ADE) and a drug-ADE relation head.

The tagger is a plain Hugging Face ``AutoModelForTokenClassification`` (PubMedBERT, MiniLM or
any encoder), saved with ``save_pretrained`` so transformers alone loads it. The relation head
scores every candidate (drug, ADE) pair from span-pooled hidden states of the same pass:
[drug, ade, drug*ade, |drug-ade|, [CLS]] -> MLP -> logit; with ``relation_context`` the
max-pooled states of the word pieces between the two spans are a sixth part (SpERT's localized
context; zeros when the spans touch or nest). Its weights sit beside the tagger in
``relation_head.safetensors``; ``ade_student.json`` records the label scheme and settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..core.errors import ModelError
from .encoding import JOINT_LABELS, LABEL2ID

FORMAT_VERSION = 1


def max_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over the masked positions of h (P, L, H) per row of mask (P, L); zeros for an empty row."""
    m = mask.bool()
    pooled = h.masked_fill(~m[..., None], torch.finfo(h.dtype).min).amax(1)
    return torch.where(m.any(1, keepdim=True), pooled, torch.zeros_like(pooled))


class RelationHead(nn.Module):
    def __init__(self, hidden: int, dropout: float = 0.1, context: bool = False) -> None:
        super().__init__()
        self.context = context
        parts = 6 if context else 5
        self.mlp = nn.Sequential(nn.Linear(parts * hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, hidden: torch.Tensor, pair_batch: torch.Tensor, drug_mask: torch.Tensor,
                ade_mask: torch.Tensor, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (B, L, H); pair_batch (P,); drug_mask/ade_mask (P, L) with 1 on the span's pieces;
        context_mask (P, L) with 1 on the pieces between them (``encoding.context_pieces``), needed
        when the head uses the context."""
        if pair_batch.numel() == 0:
            return hidden.new_zeros(0)
        h = hidden[pair_batch]  # (P, L, H)
        dm = drug_mask.to(h.dtype)
        am = ade_mask.to(h.dtype)
        hd = torch.einsum("pl,plh->ph", dm / dm.sum(1, keepdim=True).clamp(min=1), h)
        ha = torch.einsum("pl,plh->ph", am / am.sum(1, keepdim=True).clamp(min=1), h)
        ctx = max_pool(h, context_mask) if self.context and context_mask is not None else None
        return self.score(hd, ha, h[:, 0], ctx)  # a context head without its mask: score says so

    def score(self, drug: torch.Tensor, ade: torch.Tensor, cls: torch.Tensor,
              context: torch.Tensor | None = None) -> torch.Tensor:
        """Pair logits (P,) from the pooled drug and ADE states, the window's [CLS] state and, for a
        head with context, the max-pooled states between the spans (P, H) each."""
        parts = [drug, ade, drug * ade, (drug - ade).abs(), cls]
        if self.context:
            if context is None:
                raise ValueError("this relation head pools the context between the spans: pass context")
            parts.append(context)
        return self.mlp(torch.cat(parts, dim=-1)).squeeze(-1)


@contextmanager
def quiet_transformers():
    """transformers' load reports and progress bars off while ade-distill loads or saves a model
    (they read as errors to a user), unless the ade_distill logger is at DEBUG (``-vv``)."""
    from transformers.utils import logging as hf_logging

    if logging.getLogger("ade_distill").isEnabledFor(logging.DEBUG):
        yield
        return
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


class AdeStudent(nn.Module):
    """Tagger + relation head over one encoder pass."""

    def __init__(self, tagger, settings: dict) -> None:
        super().__init__()
        self.tagger = tagger
        self.settings = settings
        self.relation_head = RelationHead(tagger.config.hidden_size, settings.get("dropout", 0.1),
                                          context=bool(settings.get("relation_context", False)))

    @classmethod
    def from_encoder(cls, name_or_path: str, settings: dict | None = None, *, layers: int | None = None) -> "AdeStudent":
        """A fresh student on top of a pretrained encoder (HF id or local folder); ``layers`` keeps
        only the encoder's first N transformer layers (their pretrained weights; the rest are dropped)."""
        from transformers import AutoConfig, AutoModelForTokenClassification

        extra = {}
        if layers is not None:
            n = AutoConfig.from_pretrained(name_or_path, trust_remote_code=False).num_hidden_layers
            if layers > n:
                raise ModelError(f"{name_or_path}: layers {layers} is more than the encoder's {n}")
            extra["num_hidden_layers"] = layers
        with quiet_transformers():  # a fresh head and dropped layers are on purpose: no load report
            tagger = AutoModelForTokenClassification.from_pretrained(
                name_or_path, num_labels=len(JOINT_LABELS), id2label=dict(enumerate(JOINT_LABELS)),
                label2id=LABEL2ID, trust_remote_code=False, dtype=torch.float32, **extra)  # fp32 master weights
        return cls(tagger, {"base_model": str(name_or_path), **(settings or {})})

    def forward(self, input_ids, attention_mask, pair_batch=None, drug_mask=None, ade_mask=None, context_mask=None):
        out = self.tagger(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        hidden = out.hidden_states[-1]
        rel = None
        if pair_batch is not None:
            rel = self.relation_head(hidden, pair_batch, drug_mask, ade_mask, context_mask)
        return out.logits, rel, hidden

    @property
    def max_length(self) -> int:
        return int(self.settings.get("max_length", 256))

    def save_pretrained(self, out_dir: str | Path, tokenizer=None, extra: dict | None = None) -> None:
        """A Hugging Face model folder (safetensors; the tokenizer too when given) plus the relation
        head and our settings."""
        from safetensors.torch import save_file

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.tagger.save_pretrained(out_dir, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(out_dir)
        state = {k: v.detach().contiguous().cpu() for k, v in self.relation_head.state_dict().items()}
        save_file(state, str(out_dir / "relation_head.safetensors"))
        meta = {"format": FORMAT_VERSION, "labels": JOINT_LABELS, **self.settings, **(extra or {})}
        (out_dir / "ade_student.json").write_text(json.dumps(meta, indent=2) + "\n")
        # Writers that go through a private temporary file leave mode 0600; a model folder is
        # shared like any other output (the usual mode under the user's umask).
        mask = os.umask(0)
        os.umask(mask)
        for f in out_dir.iterdir():
            if f.is_file():
                f.chmod(0o666 & ~mask)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | torch.device = "cpu") -> "AdeStudent":
        """Load a saved student folder in eval mode (safetensors only; no remote code). Its tokenizer:
        ``AutoTokenizer.from_pretrained(model_dir)`` (or ``load_student``)."""
        from safetensors.torch import load_file
        from transformers import AutoModelForTokenClassification

        model_dir = Path(model_dir)
        meta_path = model_dir / "ade_student.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{model_dir}: not an ade-distill student folder (no ade_student.json)")

        try:
            settings = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{meta_path}: not valid JSON ({exc})") from exc
        if settings.get("labels") != JOINT_LABELS:
            raise ModelError(f"{model_dir}: label scheme differs from this version of ade-distill")
        try:
            with quiet_transformers():
                tagger = AutoModelForTokenClassification.from_pretrained(model_dir, trust_remote_code=False,
                                                                         use_safetensors=True, dtype=torch.float32)
            model = cls(tagger, settings)
            model.relation_head.load_state_dict(load_file(str(model_dir / "relation_head.safetensors")))
        except Exception as exc:  # corrupt or truncated weights: safetensors, torch and HF each raise their own
            if isinstance(exc, MemoryError):
                raise
            raise ModelError(f"{model_dir}: cannot load the student's weights ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from exc
        if settings.get("low_rank_share"):  # saved as rank-r dense weights: factorise again for speed
            from .lowrank import low_rank

            low_rank(model, float(settings["low_rank_share"]))
        return model.to(device).eval()


def load_student(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[AdeStudent, object]:
    """A saved student and its tokenizer."""
    from transformers import AutoTokenizer

    return AdeStudent.from_pretrained(model_dir, device), AutoTokenizer.from_pretrained(model_dir)


def model_info(model_dir: str | Path, metrics: str | Path | None = None, system: str | None = None) -> dict:
    """What GET /model answers: name, a version hash of the weights, labels, settings, training
    summary and (given an evaluate metrics.json) the scores this model was evaluated with."""
    model_dir = Path(model_dir)
    meta_path = model_dir / "ade_student.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{model_dir}: not a student folder (no ade_student.json)") from None
    h = hashlib.sha256()
    for f in sorted(model_dir.glob("*.safetensors")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    info = {"id": meta.get("name", model_dir.name), "version": h.hexdigest()[:16], "base_model": meta.get("base_model"),
            "labels": {"entities": ["DRUG", "ADE"], "relations": ["ADE_OF (drug -> adverse effect)"],
                       "tags": meta.get("labels", [])},
            "settings": {k: meta[k] for k in ("max_length", "stride_words", "relation_threshold", "decoding", "drug_conditioned") if k in meta}}
    tj = model_dir / "training.json"
    if tj.exists():
        t = json.loads(tj.read_text(encoding="utf-8"))
        info["training"] = {k: t.get(k) for k in ("train_sentences", "soft_targets", "device", "seconds")}
        info["training"]["epochs"] = (t.get("config") or {}).get("epochs")
    if metrics is not None:
        m = json.loads(Path(metrics).read_text(encoding="utf-8"))
        names = list(m.get("systems", {}))
        pick = system or next((n for n in names if n == f"student {info['id']}"), None) or \
            next((n for n in names if n.startswith("student")), None)
        if pick not in m.get("systems", {}):
            raise ModelError(f"{metrics}: no system {pick!r} (systems: {', '.join(names)})")
        s = m["systems"][pick]
        info["metrics"] = {"file": str(metrics), "system": pick, "test_sentences": m.get("n_sentences"),
                           **{f"{kind}_strict_f1": s[kind]["strict"]["micro"]["f1"] for kind in ("entity", "relation")}}
    return info
