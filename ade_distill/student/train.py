"""The one training loop of ade-distill (``fit``): plain PyTorch, read top to bottom; Accelerate
only places tensors on devices, runs bf16 autocast on CUDA and DDP under `accelerate launch`.

What is learnt is an *objective* plugged into the loop: ``LabelObjective`` (the first stage:
hard labels and the LLM teacher's confidences as soft targets) here, ``distill.DistillObjective``
(a second stage: an earlier student's logits, hidden states, attentions and value relations).
This is the only place that steps an optimizer."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import ModelError
from ..core.config import load_yaml_model, resolve_model
from ..core.schema import Sentence
from ..core.text import word_spans
from .conditioning import META_KEY, marked_copies
from .encoding import IGNORE, context_pieces, make_windows, pair_targets, pieces_in_window, soft_word_targets
from .losses import relation_loss, tag_loss
from .model import AdeStudent

log = logging.getLogger(__name__)


class LoopConfig(BaseModel):
    """How the training loop (``fit``) optimises: the settings every stage shares, stated once.
    TrainConfig (a first stage) and distill.CompressConfig (a second stage) extend it."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=16, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    lr: float = Field(default=5e-5, gt=0)
    head_lr: float = Field(default=1e-3, gt=0)  # the freshly initialised heads
    weight_decay: float = 0.01
    warmup: float = Field(default=0.1, ge=0, lt=1)
    max_grad_norm: float = 1.0
    # distillation: KD at temperature T, mixed with the hard labels by alpha
    alpha: float = Field(default=0.5, ge=0, le=1)
    temperature: float = Field(default=2.0, gt=0)
    relation_weight: float = Field(default=1.0, ge=0)
    seed: int = 13
    patience: int = Field(default=2, ge=1)  # epochs without a better dev score before stopping
    precision: Literal["auto", "bf16", "fp16", "no"] = "auto"

    @classmethod
    def from_yaml(cls, path):
        return load_yaml_model(path, cls)


class TrainConfig(LoopConfig):
    """Student training settings (`ade-distill train --config student.yaml`)."""

    model: str = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    layers: int | None = Field(default=None, ge=1)  # keep only the encoder's first N layers (faster, smaller)
    max_length: int = Field(default=256, ge=16)
    stride_words: int = Field(default=16, ge=0)
    dropout: float = 0.1
    soft_labels: bool = True  # use teacher confidences as soft targets when present
    relation_alpha: float = Field(default=0.5, ge=0, le=1)
    relation_pos_weight: float = Field(default=1.0, gt=0)
    # the relation head also reads the max-pooled word pieces between the drug and the ADE
    relation_context: bool = False
    # also learn to tag the ADEs of one marked drug (student/conditioning.py); at prediction time
    # each predicted drug is marked in turn and those ADE spans are its relations
    drug_conditioned: bool = False
    min_confidence: float = Field(default=0.0, ge=0, le=1)  # teacher spans below it are not hard labels
    # unlabeled-entity-aware training (Li et al., ICLR 2021, negative sampling): a word no label
    # touches (hard O, soft target all O) is only weak evidence of "no entity", since the teacher
    # misses spans; each batch keeps this share of such words in the tag loss (hard and soft) and
    # leaves the rest out. 1.0: every unmarked word is a negative (plain training).
    negative_sampling: float = Field(default=1.0, gt=0, le=1)
    # per-sentence loss weight: 1, the mean of the teacher's span confidences, or the label quality
    # score confident learning gave the sentence (`ade-distill labels clean`, meta.label_quality)
    sentence_weight: Literal["none", "mean_confidence", "label_quality"] = "none"
    relation_threshold: float = Field(default=0.5, gt=0, lt=1)
    decoding: Literal["viterbi", "argmax"] = "viterbi"  # how tags become spans at prediction time
    # mention replacement (student/augment.py): this many extra copies of each labelled sentence
    # with its mentions swapped for others of the same label from the training labels themselves
    augment_copies: int = Field(default=0, ge=0)
    eval_batch_size: int = 64


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    soft: torch.Tensor  # (L, 9)
    soft_mask: list[int]
    pairs: list[tuple[list[int], list[int], float, float]]  # drug pieces, ade pieces, hard, soft
    weight: float


def build_examples(sentences: Iterable[Sentence], tokenizer, cfg: TrainConfig) -> list[Example]:
    """Windows with hard labels, soft targets and relation candidates for every sentence."""
    examples = []
    for si, s in enumerate(sentences):
        words = word_spans(s.text)
        hard, soft = soft_word_targets(s, words, cfg.min_confidence)
        confs = [e.confidence for e in s.entities if e.confidence is not None]
        weight = float(sum(confs) / len(confs)) if cfg.sentence_weight == "mean_confidence" and confs else 1.0
        if cfg.sentence_weight == "label_quality":
            weight = float(s.meta.get("label_quality", 1.0))
        targets = [] if META_KEY in s.meta else pair_targets(s)  # a marked copy trains the tagger only
        for w in make_windows(tokenizer, s.text, si, cfg.max_length, cfg.stride_words):
            L = len(w.input_ids)
            labels = [IGNORE] * L
            soft_t = torch.zeros(L, 9)
            smask = [0] * L
            for wi, pos in w.first_piece.items():
                labels[pos] = hard[wi]
                soft_t[pos] = soft[wi]
                smask[pos] = 1
            pairs = []
            for d, a, h, sc in targets:
                dp, ap = pieces_in_window(w, words, d), pieces_in_window(w, words, a)
                if dp and ap:
                    pairs.append((dp, ap, h, sc))
            examples.append(Example(w.input_ids, labels, soft_t, smask, pairs, weight))
    return examples


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    L = max(len(e.input_ids) for e in batch)  # dynamic padding
    B = len(batch)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    att = torch.zeros(B, L, dtype=torch.long)
    labels = torch.full((B, L), IGNORE, dtype=torch.long)
    soft = torch.zeros(B, L, 9)
    smask = torch.zeros(B, L, dtype=torch.long)
    pb, dm, am, cm, ph, ps = [], [], [], [], [], []
    for b, e in enumerate(batch):
        n = len(e.input_ids)
        ids[b, :n] = torch.tensor(e.input_ids)
        att[b, :n] = 1
        labels[b, :n] = torch.tensor(e.labels)
        soft[b, :n] = e.soft
        smask[b, :n] = torch.tensor(e.soft_mask)
        for dp, ap, h, s in e.pairs:
            d = torch.zeros(L)
            d[dp] = 1
            a = torch.zeros(L)
            a[ap] = 1
            c = torch.zeros(L)
            c[context_pieces(dp, ap)] = 1
            pb.append(b)
            dm.append(d)
            am.append(a)
            cm.append(c)
            ph.append(h)
            ps.append(s)
    return {"input_ids": ids, "attention_mask": att, "labels": labels, "soft": soft, "soft_mask": smask,
            "weights": torch.tensor([e.weight for e in batch]),
            "pair_batch": torch.tensor(pb, dtype=torch.long),
            "drug_mask": torch.stack(dm) if dm else torch.zeros(0, L),
            "ade_mask": torch.stack(am) if am else torch.zeros(0, L),
            "context_mask": torch.stack(cm) if cm else torch.zeros(0, L),
            "pair_hard": torch.tensor(ph), "pair_soft": torch.tensor(ps)}


def length_batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (sorted within chunks of 50 batches)."""
    idx = list(range(len(examples)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for i in range(0, len(idx), chunk):
        part = sorted(idx[i:i + chunk], key=lambda j: len(examples[j].input_ids))
        batches += [part[k:k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def has_soft_targets(sentences: Sequence[Sentence]) -> bool:
    return any(e.confidence is not None for s in sentences for e in s.entities)


def sample_negatives(labels: torch.Tensor, soft: torch.Tensor, soft_mask: torch.Tensor, keep: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Leave a random ``1 - keep`` of the unmarked words (hard label O and a soft target that is
    all O) out of the tag loss; marked and uncertain words always count."""
    unmarked = (labels == 0) & (soft[..., 0] >= 1.0 - 1e-6)
    drop = unmarked & (torch.rand(labels.shape, device=labels.device) >= keep)
    return labels.masked_fill(drop, IGNORE), soft_mask.masked_fill(drop, 0)


class LabelObjective:
    """The first stage: cross-entropy on the hard tags and pairs, mixed (``alpha``) with KD to the
    teacher's confidences when there are soft targets."""

    def __init__(self, cfg: "TrainConfig", use_soft: bool) -> None:
        self.cfg, self.use_soft = cfg, use_soft

    def extra_parameters(self) -> list:
        return []

    def to(self, device) -> "LabelObjective":
        return self

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        cfg, use_soft = self.cfg, self.use_soft
        logits, rel_logits, _ = model(batch["input_ids"], batch["attention_mask"], batch["pair_batch"],
                                      batch["drug_mask"], batch["ade_mask"], batch["context_mask"])
        logits = logits.float()
        weights = batch["weights"] if cfg.sentence_weight != "none" else None
        labels, soft_mask = batch["labels"], batch["soft_mask"]
        if cfg.negative_sampling < 1.0 and model.training:
            labels, soft_mask = sample_negatives(labels, batch["soft"], soft_mask, cfg.negative_sampling)
        t_loss = tag_loss(logits, labels, batch["soft"] if use_soft else None, soft_mask,
                          alpha=cfg.alpha if use_soft else 0.0, T=cfg.temperature, weights=weights)
        r_loss = relation_loss(rel_logits.float(), batch["pair_hard"], batch["pair_soft"] if use_soft else None,
                               alpha=cfg.relation_alpha if use_soft else 0.0, pos_weight=cfg.relation_pos_weight)
        return t_loss + cfg.relation_weight * r_loss, {"tag": t_loss, "rel": r_loss}


def param_groups(model, lr: float, head_lr: float, extra_body=()) -> list[dict]:
    """AdamW groups: the encoder (and ``extra_body``, e.g. a projection) at ``lr``; the freshly
    initialised heads (the tagger's classifier and the relation head) at ``head_lr``."""
    head, body = [], list(extra_body)
    for n, p in model.named_parameters():
        (head if n.startswith(("relation_head.", "tagger.classifier.")) else body).append(p)
    return [{"params": body, "lr": lr}, {"params": head, "lr": head_lr}]


def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass


def fit(model, examples: Sequence[Example], pad_id: int, objective, s: LoopConfig, *, save, out_dir: Path | None = None,
        resume: bool = False, progress: bool = True, desc: str = "epoch", score=None) -> list[dict]:
    """Train ``model`` on ``examples`` for ``objective`` (``loss(model, batch) -> (loss, terms)``).

    After each epoch ``score(model)`` (optional) returns the epoch's dev entries and a score; the
    model is saved with ``save(model, history)`` at every epoch without a score, else when the score
    improves, and training stops after ``s.patience`` epochs without improvement. With ``out_dir``
    a checkpoint is written after each epoch into ``out_dir/checkpoint`` and ``resume`` continues
    from it. Returns the history (one entry per epoch: losses, seconds, dev scores, kept)."""
    from accelerate import Accelerator
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    cuda = torch.cuda.is_available()
    precision = s.precision if s.precision != "auto" else ("bf16" if cuda else "no")
    acc = Accelerator(mixed_precision=precision, gradient_accumulation_steps=s.grad_accum, cpu=not cuda)
    objective.to(acc.device)
    groups = param_groups(model, s.lr, s.head_lr, extra_body=objective.extra_parameters())
    opt = torch.optim.AdamW(groups, weight_decay=s.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(examples) / s.batch_size) / s.grad_accum)
    total = steps_per_epoch * s.epochs
    sched = get_linear_schedule_with_warmup(opt, int(s.warmup * total), total)
    model, opt, sched = acc.prepare(model, opt, sched)
    trained = [p for g in groups for p in g["params"]]
    ckpt = out_dir / "checkpoint" if out_dir is not None else None
    start_epoch, best, bad_epochs, history = 0, -1.0, 0, []
    if resume and ckpt is not None and (ckpt / "trainer_state.json").exists():
        from safetensors.torch import load_file

        state = json.loads((ckpt / "trainer_state.json").read_text())
        acc.unwrap_model(model).load_state_dict(load_file(str(ckpt / "model.safetensors")))
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        sched.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
        start_epoch, best, bad_epochs, history = state["epoch"], state["best"], state["bad_epochs"], state["history"]
        log.info("resumed from %s at epoch %d", ckpt, start_epoch)
    rng = random.Random(s.seed)
    for _ in range(start_epoch):  # keep the batch order a fresh run would have had
        length_batches(examples, s.batch_size, rng)
    t0, seen = time.monotonic(), 0
    for epoch in range(start_epoch, s.epochs):
        model.train()
        bar = tqdm(length_batches(examples, s.batch_size, rng), desc=f"{desc} {epoch + 1}/{s.epochs}", unit=" batch",
                   disable=not progress or None)
        sums: dict[str, float] = {}
        n = 0
        for bidx in bar:
            batch = {k: v.to(acc.device) for k, v in collate([examples[i] for i in bidx], pad_id).items()}
            with acc.accumulate(model):
                with acc.autocast():
                    loss, terms = objective.loss(model, batch)
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(trained, s.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad()
            n += 1
            seen += len(bidx)
            for k, v in {"loss": loss, **terms}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix({**{k: f"{v / n:.4f}" for k, v in sums.items()},
                             "rate": f"{seen / (time.monotonic() - t0):.1f}/s"})
        entry = {"epoch": epoch + 1, "train_loss": sums.get("loss", 0.0) / max(n, 1),
                 **{k: v / max(n, 1) for k, v in sums.items() if k != "loss"}, "seconds": time.monotonic() - t0}
        unwrapped = acc.unwrap_model(model)
        value = None
        if score is not None:
            extra, value = score(unwrapped)
            entry.update(extra)
            unwrapped.train()
        history.append(entry)
        log.info("epoch %d: %s", epoch + 1, entry)
        improved = value is None or value > best
        entry["kept"] = improved  # the saved model is the last epoch marked kept
        if improved:
            best, bad_epochs = (value if value is not None else best), 0
            if acc.is_main_process:
                save(unwrapped, history)
        else:
            bad_epochs += 1
        if ckpt is not None and acc.is_main_process:
            from safetensors.torch import save_file

            ckpt.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous().cpu() for k, v in unwrapped.state_dict().items()},
                      str(ckpt / "model.safetensors"))
            torch.save(opt.state_dict(), ckpt / "optimizer.pt")
            torch.save(sched.state_dict(), ckpt / "scheduler.pt")
            (ckpt / "trainer_state.json").write_text(json.dumps(
                {"epoch": epoch + 1, "best": best, "bad_epochs": bad_epochs, "history": history}))
        if score is not None and bad_epochs >= s.patience:
            log.info("early stop: the dev score did not improve for %d epochs", bad_epochs)
            break
    return history


def new_student(cfg: TrainConfig, name: str):
    """(a fresh student on the recipe's encoder, its fast tokenizer)."""
    from transformers import AutoTokenizer

    model_ref = resolve_model(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_ref)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{cfg.model}: a fast tokenizer is needed for offset alignment")
    settings = {"max_length": cfg.max_length, "stride_words": cfg.stride_words, "dropout": cfg.dropout,
                "relation_threshold": cfg.relation_threshold, "decoding": cfg.decoding, "name": name,
                "relation_context": cfg.relation_context, "drug_conditioned": cfg.drug_conditioned}
    return AdeStudent.from_encoder(model_ref, settings, layers=cfg.layers), tokenizer


def train_student(train: Sequence[Sentence], dev: Sequence[Sentence] | None, cfg: TrainConfig,
                  out_dir: str | Path, *, resume: bool = False, progress: bool = True,
                  name: str | None = None, start_from: str | Path | None = None) -> Path:
    """Fine-tune an encoder on labelled sentences (gold or teacher) and save the best model;
    ``start_from`` (a saved student folder): continue from its weights, encoder and heads, instead of
    a fresh head on ``cfg.model`` (a second stage; its encoder, layers and decoding settings are kept)."""
    out_dir = Path(out_dir)
    seed_all(cfg.seed)
    if start_from is not None:
        from .model import load_student

        model, tokenizer = load_student(start_from)
        model.settings["name"] = name or out_dir.name
    else:
        model, tokenizer = new_student(cfg, name or out_dir.name)
    use_soft = cfg.soft_labels and has_soft_targets(train)
    t0 = time.monotonic()
    extra: list[Sentence] = []
    if cfg.augment_copies:
        from .augment import mention_replacement

        extra = mention_replacement(train, cfg.augment_copies, seed=cfg.seed)
        log.info("mention replacement: %d augmented sentences from %d", len(extra), len(train))
        train = list(train) + extra
    marked = marked_copies(train) if cfg.drug_conditioned else []
    if marked:
        log.info("drug-conditioned: %d marked copies (one per labelled drug)", len(marked))
    examples = build_examples(list(train) + marked, tokenizer, cfg)
    log.info("%d training windows from %d sentences (soft targets: %s)", len(examples), len(train), use_soft)

    def score(m):
        from ..evaluate import evaluate
        from .extract import predict_sentences

        preds = predict_sentences(m, tokenizer, dev, batch_size=cfg.eval_batch_size, device=next(m.parameters()).device)
        r = evaluate(dev, {"dev": preds}, n_bootstrap=0)["systems"]["dev"]
        e = {"dev_entity_f1": r["entity"]["strict"]["micro"]["f1"], "dev_relation_f1": r["relation"]["strict"]["micro"]["f1"]}
        return e, e["dev_relation_f1"] + 1e-3 * e["dev_entity_f1"]

    history = fit(model, examples, tokenizer.pad_token_id, LabelObjective(cfg, use_soft), cfg,
                  save=lambda m, h: m.save_pretrained(out_dir, tokenizer, {"history": h}), out_dir=out_dir,
                  resume=resume, progress=progress, score=score if dev else None)
    cuda = torch.cuda.is_available()
    (out_dir / "training.json").write_text(json.dumps(
        {"config": cfg.model_dump(), "history": history, "soft_targets": use_soft,
         "train_sentences": len(train) - len(extra), "augmented_sentences": len(extra),
         "marked_copies": len(marked), "train_windows": len(examples),
         "seconds": time.monotonic() - t0, "device": "cuda" if cuda else "cpu",
         "precision": cfg.precision if cfg.precision != "auto" else ("bf16" if cuda else "no")}, indent=2) + "\n")
    return out_dir
