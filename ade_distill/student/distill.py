"""Second-stage distillation of a trained student (born again, an ensemble, or a smaller one).

``ade-distill compress --teacher DIR --train labels.jsonl --out DIR [--layers N] [--hidden H]``
trains an encoder initialised from a subset of the teacher-student's layers (or a narrower fresh
one) on the same sentences, through the one training loop (``train.fit``) with this module's
objective, ``DistillObjective``: switchable, weighted terms

- logit KD on tags (KL at temperature T, times T^2) and on relation pairs (BCE to the teacher's
  tempered pair probabilities), mixed with the hard labels by ``alpha``;
- hidden-state MSE on a layer mapping (TinyBERT), through a learned projection when widths differ;
- attention-distribution KL on the mapped layers (TinyBERT / MiniLM);
- value-relation KL on the last layer (MiniLM: softmax(V V^T / sqrt(d)) per head).

The output is a normal student folder. Pruning and low rank (no training): ``shrink``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..core.errors import InputError
from ..core.schema import Sentence
from .losses import hard_tag_loss, kd_loss, relation_loss
from .model import AdeStudent, load_student
from .train import LoopConfig

log = logging.getLogger(__name__)


class CompressConfig(LoopConfig):
    """Settings of the second-stage distillation (`ade-distill compress --config c.yaml`): the
    training loop's (LoopConfig, with a second stage's defaults) and the distillation terms'."""

    layers: int | None = Field(default=None, ge=1)  # default: half the teacher's layers
    layer_init: Literal["uniform", "bottom"] = "uniform"  # which teacher layers seed the student
    hidden: int | None = Field(default=None, ge=16)  # narrower student: fresh weights at this width
    heads: int | None = Field(default=None, ge=1)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    alpha: float = Field(default=0.7, ge=0, le=1)  # share of logit KD against the hard labels
    w_logits: float = Field(default=1.0, ge=0)
    w_hidden: float = Field(default=1.0, ge=0)
    w_attention: float = Field(default=1.0, ge=0)
    w_value: float = Field(default=1.0, ge=0)


# ---------------------------------------------------------------- the loss terms

def hidden_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], mask: torch.Tensor,
               proj: nn.Module | None = None) -> torch.Tensor:
    """Mean over the mapped layer pairs of the per-token MSE (mean over features), masked."""
    m = mask.to(student[0].dtype)
    total = student[0].new_zeros(())
    for s, t in zip(student, teacher):
        s = proj(s) if proj is not None else s
        se = ((s - t) ** 2).mean(-1)  # (B, L)
        total = total + (se * m).sum() / m.sum().clamp(min=1.0)
    return total / max(len(student), 1)


def attention_kl(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) between attention distributions (B, heads, L, L), averaged over
    the real query rows, heads and mapped layers; head counts that differ are compared head-averaged."""
    m = mask.to(student[0].dtype)
    total = student[0].new_zeros(())
    for s, t in zip(student, teacher):
        if s.shape[1] != t.shape[1]:
            s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
        kl = (t * (torch.log(t.clamp(min=1e-12)) - torch.log(s.clamp(min=1e-12)))).sum(-1)  # (B, H, L)
        total = total + (kl.mean(1) * m).sum() / m.sum().clamp(min=1.0)
    return total / max(len(student), 1)


def value_relation(values: torch.Tensor, heads: int, mask: torch.Tensor) -> torch.Tensor:
    """MiniLM's value relation: softmax(V_h V_h^T / sqrt(d_h)) per head, padded keys masked.
    values (B, L, H) -> (B, heads, L, L)."""
    B, L, H = values.shape
    v = values.view(B, L, heads, H // heads).transpose(1, 2)  # (B, heads, L, d)
    scores = v @ v.transpose(-1, -2) / math.sqrt(H // heads)
    scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    return F.softmax(scores, dim=-1)


def value_relation_kl(s_values: torch.Tensor, t_values: torch.Tensor, s_heads: int, t_heads: int,
                      mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher VR || student VR) on one layer; relation heads = the smaller head count."""
    h = min(s_heads, t_heads)
    return attention_kl([value_relation(s_values, h, mask)], [value_relation(t_values, h, mask)], mask)


# ---------------------------------------------------------------- building the smaller student

def layer_map(n_student: int, n_teacher: int, how: str = "uniform") -> list[int]:
    """Teacher layer index for each student layer (uniform: the last of each equal block)."""
    if n_student > n_teacher:
        raise InputError(f"a compressed student cannot have more layers ({n_student}) than its teacher ({n_teacher})")
    if how == "bottom":
        return list(range(n_student))
    return [round((i + 1) * n_teacher / n_student) - 1 for i in range(n_student)]


def _encoder_layers(tagger) -> nn.ModuleList:
    base = getattr(tagger, tagger.base_model_prefix)
    enc = getattr(base, "encoder", None)
    layers = getattr(enc, "layer", None) or getattr(enc, "layers", None)
    if layers is None:
        raise ValueError(f"{type(tagger).__name__}: cannot find the encoder's layer list")
    return layers


def build_small(teacher: AdeStudent, cfg: CompressConfig) -> tuple[AdeStudent, list[int]]:
    """A student with fewer layers (copied from the teacher) or a narrower fresh encoder."""
    from transformers import AutoModelForTokenClassification

    tcfg = teacher.tagger.config
    n_t = tcfg.num_hidden_layers
    n_s = cfg.layers or max(1, n_t // 2)
    mapping = layer_map(n_s, n_t, cfg.layer_init)
    scfg = tcfg.__class__.from_dict(tcfg.to_dict())
    scfg.num_hidden_layers = n_s
    narrow = cfg.hidden is not None and cfg.hidden != tcfg.hidden_size
    if narrow:
        heads = cfg.heads or max(1, tcfg.num_attention_heads * cfg.hidden // tcfg.hidden_size)
        if cfg.hidden % heads:
            raise InputError(f"hidden {cfg.hidden} is not divisible by {heads} heads")
        scfg.hidden_size, scfg.num_attention_heads = cfg.hidden, heads
        scfg.intermediate_size = 4 * cfg.hidden
    tagger = AutoModelForTokenClassification.from_config(scfg, attn_implementation="eager")
    if not narrow:
        tsd = teacher.tagger.state_dict()
        sd = {}
        for k in tagger.state_dict():
            src = k
            parts = k.split(".")
            if "layer" in parts:
                i = parts.index("layer")
                if i + 1 < len(parts) and parts[i + 1].isdigit():
                    parts[i + 1] = str(mapping[int(parts[i + 1])])
                    src = ".".join(parts)
            sd[k] = tsd[src]
        tagger.load_state_dict(sd)
    settings = {**teacher.settings, "compressed_from": teacher.settings.get("name"), "layer_map": mapping,
                "name": f"{teacher.settings.get('name', 'student')}-L{n_s}" + (f"-H{cfg.hidden}" if narrow else "")}
    small = AdeStudent(tagger, settings)
    if not narrow:
        small.relation_head.load_state_dict(teacher.relation_head.state_dict())
    return small, mapping


class _ValueTap:
    """Forward hooks that keep the value projections' outputs of chosen layers (BERT family)."""

    def __init__(self, tagger, layer_ids: Sequence[int]) -> None:
        self.out: dict[int, torch.Tensor] = {}
        self.handles = []
        layers = _encoder_layers(tagger)
        for i in layer_ids:
            v = getattr(getattr(getattr(layers[i], "attention", None), "self", None), "value", None)
            if v is None:
                raise ValueError("value-relation distillation needs BERT-style attention (attention.self.value); "
                                 "set w_value: 0 for this encoder")
            self.handles.append(v.register_forward_hook(lambda m, a, o, i=i: self.out.__setitem__(i, o)))

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _forward(model: AdeStudent, batch: dict, attentions: bool):
    out = model.tagger(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       output_hidden_states=True, output_attentions=attentions)
    hidden = out.hidden_states[-1]
    rel = model.relation_head(hidden, batch["pair_batch"], batch["drug_mask"], batch["ade_mask"], batch["context_mask"])
    return out, rel


def load_teachers(teacher_dirs: Sequence[str | Path]) -> tuple[list[AdeStudent], object]:
    """Frozen teacher-students (eager attention, for their attention maps) and the first one's
    tokenizer; an ensemble must share its word pieces and window length."""
    teachers, tok = [], None
    for d in teacher_dirs:
        t, t_tok = load_student(d, "cpu")
        if tok is None:
            tok = t_tok
        elif t_tok.get_vocab() != tok.get_vocab() or t.max_length != teachers[0].max_length:
            raise InputError(f"{d}: an ensemble's students must share the tokenizer and max_length of {teacher_dirs[0]}")
        t.tagger.set_attn_implementation("eager")
        t.eval()
        for p in t.parameters():
            p.requires_grad_(False)
        teachers.append(t)
    if not teachers:
        raise InputError("compress needs at least one teacher-student")
    return teachers, tok


def ensemble_targets(tag_logits: Sequence[torch.Tensor], pair_logits: Sequence[torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ensemble's tag targets as log mean probabilities (usable as logits) and its pair
    probabilities (mean of the members'); one member's own logits and probabilities unchanged."""
    if len(tag_logits) == 1:
        return tag_logits[0], torch.sigmoid(pair_logits[0])
    probs = torch.stack([F.softmax(t.float(), -1) for t in tag_logits]).mean(0)
    return torch.log(probs.clamp(min=1e-12)), torch.stack([torch.sigmoid(r) for r in pair_logits]).mean(0)


class DistillObjective:
    """A second stage's loss (a ``train.fit`` objective): the hard labels and KD to the earlier
    student's (or the ensemble's) tag and pair outputs, plus hidden-state, attention and
    value-relation terms on the mapped layers, each weighted by the CompressConfig."""

    def __init__(self, teachers: list[AdeStudent], small: AdeStudent, mapping: list[int], cfg: CompressConfig) -> None:
        self.teachers, self.mapping, self.cfg = teachers, mapping, cfg
        tcfg, scfg = teachers[0].tagger.config, small.tagger.config
        self.n_t, self.n_s = tcfg.num_hidden_layers, scfg.num_hidden_layers
        self.heads = (scfg.num_attention_heads, tcfg.num_attention_heads)
        self.proj = nn.Linear(scfg.hidden_size, tcfg.hidden_size) if scfg.hidden_size != tcfg.hidden_size else None
        self.need_att, self.need_val = cfg.w_attention > 0, cfg.w_value > 0
        self.s_tap = _ValueTap(small.tagger, [self.n_s - 1]) if self.need_val else None
        self.t_tap = _ValueTap(teachers[0].tagger, [self.n_t - 1]) if self.need_val else None

    def extra_parameters(self) -> list:
        return list(self.proj.parameters()) if self.proj is not None else []

    def to(self, device) -> "DistillObjective":
        for t in self.teachers:
            t.to(device)
        if self.proj is not None:
            self.proj.to(device)
        return self

    def close(self) -> None:
        for tap in (self.s_tap, self.t_tap):
            if tap:
                tap.close()

    def loss(self, small: AdeStudent, batch: dict) -> tuple[torch.Tensor, dict]:
        cfg, T, mask = self.cfg, self.cfg.temperature, batch["attention_mask"]
        with torch.no_grad():
            t_outs = [_forward(t, batch, self.need_att and k == 0) for k, t in enumerate(self.teachers)]
            t_out = t_outs[0][0]  # hidden states and attentions: the first member's
            t_tags, t_pairs = ensemble_targets([o.logits for o, _ in t_outs], [r for _, r in t_outs])
        s_out, s_rel = _forward(small, batch, self.need_att)
        tag = ((1 - cfg.alpha) * hard_tag_loss(s_out.logits, batch["labels"])
               + cfg.alpha * kd_loss(s_out.logits, t_tags, mask, T))
        rel = relation_loss(s_rel, batch["pair_hard"], t_pairs if t_pairs.numel() else None, alpha=cfg.alpha, T=T)
        terms = {"logits": tag + cfg.relation_weight * rel}
        if cfg.w_hidden > 0:
            s_h = [s_out.hidden_states[0]] + [s_out.hidden_states[i + 1] for i in range(len(self.mapping))]
            t_h = [t_out.hidden_states[0]] + [t_out.hidden_states[m + 1] for m in self.mapping]
            terms["hidden"] = hidden_mse(s_h, t_h, mask, self.proj)
        if self.need_att:
            terms["attention"] = attention_kl(list(s_out.attentions), [t_out.attentions[m] for m in self.mapping], mask)
        if self.need_val:
            terms["value"] = value_relation_kl(self.s_tap.out[self.n_s - 1], self.t_tap.out[self.n_t - 1],
                                               *self.heads, mask)
        weights = {"logits": cfg.w_logits, "hidden": cfg.w_hidden, "attention": cfg.w_attention, "value": cfg.w_value}
        return sum(weights[k] * v for k, v in terms.items()), terms


def compress_student(teacher_dir: str | Path | Sequence[str | Path], train: Sequence[Sentence], cfg: CompressConfig,
                     out_dir: str | Path, *, unlabeled: Sequence[Sentence] = (), progress: bool = True) -> Path:
    """Distil a trained student folder into a new (born again, or smaller) one on ``train``;
    returns ``out_dir``.

    Several folders are an ensemble: the new student learns their mean tag and pair
    probabilities, and the first one's hidden states and attentions (it is built from the first).

    ``unlabeled`` sentences (their labels, if any, are ignored) are labelled by the
    teacher-student itself (the first of an ensemble) and added to ``train``: the second stage's
    teacher costs milliseconds a sentence, so every unlabelled sentence becomes transfer data
    (TinyBERT's augmentation, without the LLM)."""
    from .conditioning import marked_copies
    from .train import TrainConfig, build_examples, fit, seed_all

    out_dir = Path(out_dir)
    seed_all(cfg.seed)
    teacher_dirs = [teacher_dir] if isinstance(teacher_dir, (str, Path)) else list(teacher_dir)
    teachers, tok = load_teachers(teacher_dirs)
    teacher = teachers[0]
    small, mapping = build_small(teacher, cfg)
    small.train()
    objective = DistillObjective(teachers, small, mapping, cfg)
    n_labelled = len(train)
    if unlabeled:
        from .extract import predict_sentences

        t1 = time.monotonic()
        pseudo = predict_sentences(teacher, tok, unlabeled, batch_size=64)  # reads the text only
        log.info("teacher-student labelled %d unlabelled sentences in %.0f s", len(pseudo), time.monotonic() - t1)
        train = list(train) + pseudo
    tc = TrainConfig(model=str(teacher_dirs[0]), max_length=small.max_length,
                     stride_words=int(small.settings.get("stride_words", 16)), soft_labels=False)
    # a drug-conditioned teacher-student passes the marked task on too (its logits on the copies)
    marked = marked_copies(train) if teacher.settings.get("drug_conditioned") else []
    examples = build_examples(list(train) + marked, tok, tc)
    t0 = time.monotonic()
    history = fit(small, examples, tok.pad_token_id, objective, cfg, save=lambda m, h: None,
                  progress=progress, desc="compress")
    objective.close()
    small.tagger.set_attn_implementation("sdpa")
    small.eval()
    small.save_pretrained(out_dir, tok, {"history": history})
    (out_dir / "compress.json").write_text(json.dumps(
        {"config": cfg.model_dump(), "teacher": str(teacher_dirs[0]) if len(teacher_dirs) == 1 else [str(d) for d in teacher_dirs],
         "layer_map": mapping, "history": history,
         "train_sentences": n_labelled, "teacher_labelled_sentences": len(train) - n_labelled,
         "marked_copies": len(marked),
         "parameters": sum(p.numel() for p in small.parameters()),
         "teacher_parameters": sum(p.numel() for p in teacher.parameters()),
         "seconds": time.monotonic() - t0}, indent=2) + "\n")
    return out_dir
