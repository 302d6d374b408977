"""Second-stage compression of a trained student.

``ade-distill compress --teacher DIR --train labels.jsonl --out DIR [--layers N] [--hidden H]``
trains a smaller encoder, initialised from a subset of the teacher-student's layers (or a
narrower fresh one), on the same sentences with switchable, weighted terms:

- logit KD on tags (KL at temperature T, times T^2) and on relation pairs (BCE to the teacher's
  tempered pair probabilities), mixed with the hard labels by ``alpha``;
- hidden-state MSE on a layer mapping (TinyBERT), through a learned projection when widths differ;
- attention-distribution KL on the mapped layers (TinyBERT / MiniLM);
- value-relation KL on the last layer (MiniLM: softmax(V V^T / sqrt(d)) per head).

The output is a normal student folder. Also here: magnitude pruning and low-rank factorisation
of the linear layers, each measured by the same scorer (``ade-distill compress --method``).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..errors import InputError
from ..config import load_yaml_model
from ..schema import Sentence
from .losses import hard_tag_loss, relation_loss
from .lowrank import encoder_linears, saving_rank
from .model import AdeStudent, load_student

log = logging.getLogger(__name__)


class CompressConfig(BaseModel):
    """Settings of the second-stage distillation (`ade-distill compress --config c.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    layers: int | None = Field(default=None, ge=1)  # default: half the teacher's layers
    layer_init: Literal["uniform", "bottom"] = "uniform"  # which teacher layers seed the student
    hidden: int | None = Field(default=None, ge=16)  # narrower student: fresh weights at this width
    heads: int | None = Field(default=None, ge=1)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    head_lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = 0.01
    warmup: float = Field(default=0.1, ge=0, lt=1)
    max_grad_norm: float = 1.0
    temperature: float = Field(default=2.0, gt=0)
    alpha: float = Field(default=0.7, ge=0, le=1)  # share of logit KD against the hard labels
    relation_weight: float = Field(default=1.0, ge=0)
    w_logits: float = Field(default=1.0, ge=0)
    w_hidden: float = Field(default=1.0, ge=0)
    w_attention: float = Field(default=1.0, ge=0)
    w_value: float = Field(default=1.0, ge=0)
    seed: int = 13

    @classmethod
    def from_yaml(cls, path) -> "CompressConfig":
        return load_yaml_model(path, cls)


# ---------------------------------------------------------------- the loss terms

def logit_kd_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, T: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over masked positions; (B, L, C) logits."""
    log_s = F.log_softmax(student / T, dim=-1)
    log_t = F.log_softmax(teacher / T, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    m = mask.to(kl.dtype)
    return (T * T) * (kl * m).sum() / m.sum().clamp(min=1.0)


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


def compress_student(teacher_dir: str | Path | Sequence[str | Path], train: Sequence[Sentence], cfg: CompressConfig,
                     out_dir: str | Path, *, unlabeled: Sequence[Sentence] = (), progress: bool = True) -> Path:
    """Distil a trained student folder into a smaller one on ``train``; returns ``out_dir``.

    Several folders are an ensemble: the new student learns their mean tag and pair
    probabilities, and the first one's hidden states and attentions (it is built from the first).

    ``unlabeled`` sentences (their labels, if any, are ignored) are labelled by the
    teacher-student itself (the first of an ensemble) and added to ``train``: the second stage's
    teacher costs milliseconds a sentence, so every unlabelled sentence becomes transfer data
    (TinyBERT's augmentation, without the LLM)."""
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    from .conditioning import marked_copies
    from .train import TrainConfig, build_examples, collate, length_batches, param_groups, seed_all

    out_dir = Path(out_dir)
    seed_all(cfg.seed)
    teacher_dirs = [teacher_dir] if isinstance(teacher_dir, (str, Path)) else list(teacher_dir)
    teachers, tok = load_teachers(teacher_dirs)
    teacher = teachers[0]
    small, mapping = build_small(teacher, cfg)
    small.train()
    tcfg, scfg = teacher.tagger.config, small.tagger.config
    proj = nn.Linear(scfg.hidden_size, tcfg.hidden_size) if scfg.hidden_size != tcfg.hidden_size else None
    need_att, need_val = cfg.w_attention > 0, cfg.w_value > 0
    s_tap = _ValueTap(small.tagger, [scfg.num_hidden_layers - 1]) if need_val else None
    t_tap = _ValueTap(teacher.tagger, [tcfg.num_hidden_layers - 1]) if need_val else None
    n_labelled = len(train)
    if unlabeled:
        from .extract import predict_sentences

        t1 = time.monotonic()
        pseudo = predict_sentences(teacher, tok, unlabeled, batch_size=64)  # reads the text only
        log.info("teacher-student labelled %d unlabelled sentences in %.0f s", len(pseudo), time.monotonic() - t1)
        train = list(train) + pseudo
    tc = TrainConfig(model=str(teacher_dir), max_length=small.max_length,
                     stride_words=int(small.settings.get("stride_words", 16)), soft_labels=False)
    # a drug-conditioned teacher-student passes the marked task on too (its logits on the copies)
    marked = marked_copies(train) if teacher.settings.get("drug_conditioned") else []
    examples = build_examples(list(train) + marked, tok, tc)
    groups = param_groups(small, cfg.lr, cfg.head_lr, extra_body=proj.parameters() if proj else ())
    trained = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    total = math.ceil(len(examples) / cfg.batch_size) * cfg.epochs
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * total), total)
    rng = random.Random(cfg.seed)
    history, t0 = [], time.monotonic()
    T = cfg.temperature
    for epoch in range(cfg.epochs):
        sums = {"loss": 0.0, "logits": 0.0, "hidden": 0.0, "attention": 0.0, "value": 0.0}
        n = 0
        bar = tqdm(length_batches(examples, cfg.batch_size, rng), desc=f"compress {epoch + 1}/{cfg.epochs}",
                   unit=" batch", disable=not progress or None)
        for bidx in bar:
            batch = collate([examples[i] for i in bidx], tok.pad_token_id)
            mask = batch["attention_mask"]
            with torch.no_grad():
                t_outs = [_forward(t, batch, need_att and k == 0) for k, t in enumerate(teachers)]
                t_out = t_outs[0][0]  # hidden states and attentions: the first member's
                t_tags, t_pairs = ensemble_targets([o.logits for o, _ in t_outs], [r for _, r in t_outs])
            s_out, s_rel = _forward(small, batch, need_att)
            hard_tags = hard_tag_loss(s_out.logits, batch["labels"])
            kd_tags = logit_kd_loss(s_out.logits, t_tags, mask, T)
            tag = (1 - cfg.alpha) * hard_tags + cfg.alpha * kd_tags
            rel = relation_loss(s_rel, batch["pair_hard"], t_pairs if t_pairs.numel() else None,
                                alpha=cfg.alpha, T=T)
            terms = {"logits": tag + cfg.relation_weight * rel}
            if cfg.w_hidden > 0:
                s_h = [s_out.hidden_states[0]] + [s_out.hidden_states[i + 1] for i in range(len(mapping))]
                t_h = [t_out.hidden_states[0]] + [t_out.hidden_states[m + 1] for m in mapping]
                terms["hidden"] = hidden_mse(s_h, t_h, mask, proj)
            if need_att:
                terms["attention"] = attention_kl(list(s_out.attentions), [t_out.attentions[m] for m in mapping], mask)
            if need_val:
                terms["value"] = value_relation_kl(s_tap.out[scfg.num_hidden_layers - 1],
                                                   t_tap.out[tcfg.num_hidden_layers - 1],
                                                   scfg.num_attention_heads, tcfg.num_attention_heads, mask)
            weights = {"logits": cfg.w_logits, "hidden": cfg.w_hidden, "attention": cfg.w_attention,
                       "value": cfg.w_value}
            loss = sum(weights[k] * v for k, v in terms.items())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad()
            n += 1
            sums["loss"] += float(loss.detach())
            for k, v in terms.items():
                sums[k] += float(v.detach())
            bar.set_postfix({k: f"{v / n:.3f}" for k, v in sums.items() if v})
        entry = {"epoch": epoch + 1, **{k: v / max(n, 1) for k, v in sums.items() if v}, "seconds": time.monotonic() - t0}
        history.append(entry)
        log.info("compress epoch %d: %s", epoch + 1, entry)
    for tap in (s_tap, t_tap):
        if tap:
            tap.close()
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


# ---------------------------------------------------------------- other compressions

@torch.no_grad()
def magnitude_prune(model: AdeStudent, share: float) -> dict:
    """Zero the ``share`` of encoder linear weights with the smallest magnitude (global threshold)."""
    if not 0 <= share < 1:
        raise InputError("prune share must be in [0, 1)")
    lins = encoder_linears(model)
    flat = torch.cat([m.weight.abs().flatten() for _, m in lins])
    k = int(share * flat.numel())
    if k == 0:
        return {"pruned": 0, "weights": flat.numel()}
    thr = flat.kthvalue(k).values
    pruned = 0
    for _, m in lins:
        keep = m.weight.abs() > thr
        pruned += int((~keep).sum())
        m.weight.mul_(keep)
    return {"pruned": pruned, "weights": flat.numel(), "share": pruned / flat.numel()}


@torch.no_grad()
def truncate_ranks(model: AdeStudent, rank_share: float) -> dict:
    """Replace each encoder linear's weight in place by its rank-r SVD reconstruction (same
    shapes, so the folder stays a plain HF model); ``AdeStudent.from_pretrained`` factorises them again
    (``low_rank_share`` in ade_student.json) to get the speed."""
    n = 0
    for _, lin in encoder_linears(model):
        r = saving_rank(lin, rank_share)
        if r is None:
            continue
        U, S, Vh = torch.linalg.svd(lin.weight.float(), full_matrices=False)
        lin.weight.copy_((U[:, :r] * S[:r]) @ Vh[:r])
        n += 1
    model.settings["low_rank_share"] = rank_share
    return {"layers": n}


def apply_method(teacher_dir: str | Path, method: str, share: float, out_dir: str | Path) -> dict:
    """Prune or low-rank a student folder into ``out_dir`` (a normal student folder)."""
    model, tok = load_student(teacher_dir)
    name = model.settings.get("name", "student")
    if method == "prune":
        info = magnitude_prune(model, share)
        model.settings.update(name=f"{name}-pruned{int(share * 100)}", prune_share=share)
    elif method == "low-rank":
        info = truncate_ranks(model, share)
        model.settings["name"] = f"{name}-rank{int(share * 100)}"
    else:
        raise InputError(f"unknown method {method!r} (distill, prune, low-rank)")
    model.save_pretrained(out_dir, tok)
    return info
