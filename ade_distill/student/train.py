"""The training loop: plain PyTorch, read top to bottom; Accelerate only places tensors on
devices, runs bf16 autocast on CUDA and DDP under `accelerate launch`."""

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

from ..errors import ModelError
from ..config import load_yaml_model
from ..schema import Sentence
from ..text import word_spans
from .conditioning import META_KEY, marked_copies
from .encoding import IGNORE, context_pieces, make_windows, pair_targets, pieces_in_window, soft_word_targets
from .losses import relation_loss, tag_loss
from .model import AdeStudent

log = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """Student training settings (`ade-distill train --config student.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    layers: int | None = Field(default=None, ge=1)  # keep only the encoder's first N layers (faster, smaller)
    epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=16, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    lr: float = Field(default=5e-5, gt=0)
    head_lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = 0.01
    warmup: float = Field(default=0.1, ge=0, lt=1)
    max_grad_norm: float = 1.0
    max_length: int = Field(default=256, ge=16)
    stride_words: int = Field(default=16, ge=0)
    dropout: float = 0.1
    # distillation
    soft_labels: bool = True  # use teacher confidences as soft targets when present
    alpha: float = Field(default=0.5, ge=0, le=1)
    temperature: float = Field(default=2.0, gt=0)
    relation_alpha: float = Field(default=0.5, ge=0, le=1)
    relation_weight: float = Field(default=1.0, ge=0)
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
    # run
    seed: int = 13
    patience: int = Field(default=2, ge=1)
    precision: Literal["auto", "bf16", "fp16", "no"] = "auto"
    eval_batch_size: int = 64

    @classmethod
    def from_yaml(cls, path) -> "TrainConfig":
        return load_yaml_model(path, cls)


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


def compute_loss(model, batch, cfg: TrainConfig, use_soft: bool):
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
    return t_loss + cfg.relation_weight * r_loss, t_loss.detach(), r_loss.detach()


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


def resolve_model(ref: str) -> str:
    """An HF id or local path as given; ``package:<module>`` is a model folder shipped inside an
    installed Python package (the module's ``get_model_path()``, else its ``model/`` folder),
    the way the offline MiniLM stand-in arrives from PyPI."""
    if not ref.startswith("package:"):
        return ref
    import importlib

    name = ref.removeprefix("package:")
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        raise ModelError(f"model {ref!r}: Python package {name!r} is not installed") from exc
    get = getattr(mod, "get_model_path", None)
    path = Path(get()) if get else Path(mod.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"model {ref!r}: no config.json in {path}")
    return str(path)


def train_student(train: Sequence[Sentence], dev: Sequence[Sentence] | None, cfg: TrainConfig,
                  out_dir: str | Path, *, resume: bool = False, progress: bool = True,
                  name: str | None = None) -> Path:
    """Fine-tune an encoder on labelled sentences (gold or teacher) and save the best model."""
    from accelerate import Accelerator
    from tqdm import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    out_dir = Path(out_dir)
    seed_all(cfg.seed)
    cuda = torch.cuda.is_available()
    precision = cfg.precision if cfg.precision != "auto" else ("bf16" if cuda else "no")
    acc = Accelerator(mixed_precision=precision, gradient_accumulation_steps=cfg.grad_accum, cpu=not cuda)
    model_ref = resolve_model(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_ref)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{cfg.model}: a fast tokenizer is needed for offset alignment")
    settings = {"max_length": cfg.max_length, "stride_words": cfg.stride_words, "dropout": cfg.dropout,
                "relation_threshold": cfg.relation_threshold, "decoding": cfg.decoding, "name": name or out_dir.name,
                "relation_context": cfg.relation_context, "drug_conditioned": cfg.drug_conditioned}
    model = AdeStudent.from_encoder(model_ref, settings, layers=cfg.layers)
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
    opt = torch.optim.AdamW(param_groups(model, cfg.lr, cfg.head_lr), weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(examples) / cfg.batch_size) / cfg.grad_accum)
    total = steps_per_epoch * cfg.epochs
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * total), total)
    model, opt, sched = acc.prepare(model, opt, sched)
    ckpt = out_dir / "checkpoint"
    start_epoch, best, bad_epochs, history = 0, -1.0, 0, []
    if resume and (ckpt / "trainer_state.json").exists():
        from safetensors.torch import load_file

        state = json.loads((ckpt / "trainer_state.json").read_text())
        acc.unwrap_model(model).load_state_dict(load_file(str(ckpt / "model.safetensors")))
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        sched.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
        start_epoch, best, bad_epochs, history = state["epoch"], state["best"], state["bad_epochs"], state["history"]
        log.info("resumed from %s at epoch %d", ckpt, start_epoch)
    rng = random.Random(cfg.seed)
    for _ in range(start_epoch):  # keep the batch order a fresh run would have had
        length_batches(examples, cfg.batch_size, rng)
    seen = 0
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        batches = length_batches(examples, cfg.batch_size, rng)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit=" batch", disable=not progress or None)
        run_loss, n = 0.0, 0
        for bidx in bar:
            batch = {k: v.to(acc.device) for k, v in collate([examples[i] for i in bidx], tokenizer.pad_token_id).items()}
            with acc.accumulate(model):
                with acc.autocast():
                    loss, tl, rl = compute_loss(model, batch, cfg, use_soft)
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad()
            run_loss += float(loss.detach())
            n += 1
            seen += len(bidx)
            bar.set_postfix(loss=f"{run_loss / n:.4f}", tag=f"{float(tl):.3f}", rel=f"{float(rl):.3f}",
                            rate=f"{seen / (time.monotonic() - t0):.1f}/s")
        entry = {"epoch": epoch + 1, "train_loss": run_loss / max(n, 1), "seconds": time.monotonic() - t0}
        unwrapped = acc.unwrap_model(model)
        score = None
        if dev:
            from ..evaluate import evaluate
            from .extract import predict_sentences

            preds = predict_sentences(unwrapped, tokenizer, dev, batch_size=cfg.eval_batch_size,
                                      device=acc.device)
            m = evaluate(dev, {"dev": preds}, n_bootstrap=0)["systems"]["dev"]
            entry["dev_entity_f1"] = m["entity"]["strict"]["micro"]["f1"]
            entry["dev_relation_f1"] = m["relation"]["strict"]["micro"]["f1"]
            score = entry["dev_relation_f1"] + 1e-3 * entry["dev_entity_f1"]
            unwrapped.train()
        history.append(entry)
        log.info("epoch %d: %s", epoch + 1, entry)
        improved = score is None or score > best
        entry["kept"] = improved  # the saved model is the last epoch marked kept
        if improved:
            best, bad_epochs = (score if score is not None else best), 0
            if acc.is_main_process:
                unwrapped.save_pretrained(out_dir, tokenizer, {"history": history})
        else:
            bad_epochs += 1
        if acc.is_main_process:
            from safetensors.torch import save_file

            ckpt.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous().cpu() for k, v in unwrapped.state_dict().items()},
                      str(ckpt / "model.safetensors"))
            torch.save(opt.state_dict(), ckpt / "optimizer.pt")
            torch.save(sched.state_dict(), ckpt / "scheduler.pt")
            (ckpt / "trainer_state.json").write_text(json.dumps(
                {"epoch": epoch + 1, "best": best, "bad_epochs": bad_epochs, "history": history}))
        if dev and bad_epochs >= cfg.patience:
            log.info("early stop: dev relation F1 did not improve for %d epochs", bad_epochs)
            break
    if acc.is_main_process:
        (out_dir / "training.json").write_text(json.dumps(
            {"config": cfg.model_dump(), "history": history, "soft_targets": use_soft,
             "train_sentences": len(train) - len(extra), "augmented_sentences": len(extra),
             "marked_copies": len(marked),
             "train_windows": len(examples),
             "seconds": time.monotonic() - t0, "device": str(acc.device), "precision": precision}, indent=2) + "\n")
    return out_dir
