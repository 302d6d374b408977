"""One site's share of a federated round: the student recipe's training loop, started from the
global weights, on the site's own labels, returning only trainable weights.

What leaves a site is ``weights(model)``: the named trainable parameters of the student (no
buffers, no tokenizer, no text, no labels). FedProx adds ``mu / 2 * ||w - w_global||^2`` to the
site's loss (Li et al., 2020), which keeps sites with unlike data from drifting apart.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch

from ..core.errors import ModelError
from ..core.schema import Sentence
from .train import LabelObjective, TrainConfig, build_examples, fit, has_soft_targets, new_student, seed_all

log = logging.getLogger(__name__)


def weights(model) -> dict[str, torch.Tensor]:
    """The trainable parameters by name, on the CPU: all a site sends."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_weights(model, state: dict[str, torch.Tensor]) -> None:
    """Put ``state`` (as ``weights`` made it) into ``model``; a missing or extra name or a shape
    that differs is an error (a site on another recipe or encoder)."""
    own = dict(model.named_parameters())
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        raise ModelError(f"federated weights do not fit this student: missing {missing[:3]}, unexpected {extra[:3]}")
    with torch.no_grad():
        for n, t in state.items():
            if own[n].shape != t.shape:
                raise ModelError(f"federated weights: {n} has shape {tuple(t.shape)}, the student {tuple(own[n].shape)}")
            own[n].copy_(t.to(own[n].dtype))


class ProximalObjective:
    """The recipe's objective plus FedProx's proximal term towards the round's global weights."""

    def __init__(self, base: LabelObjective, anchor: dict[str, torch.Tensor], mu: float) -> None:
        self.base, self.anchor, self.mu = base, anchor, mu

    def extra_parameters(self) -> list:
        return self.base.extra_parameters()

    def to(self, device) -> "ProximalObjective":
        self.anchor = {n: t.to(device) for n, t in self.anchor.items()}
        self.base.to(device)
        return self

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        loss, terms = self.base.loss(model, batch)
        prox = sum(((p - self.anchor[n]) ** 2).sum() for n, p in model.named_parameters() if n in self.anchor)
        return loss + 0.5 * self.mu * prox, {**terms, "prox": prox}


def initial_student(cfg: TrainConfig, name: str = "federated"):
    """The round-0 global student: the recipe's encoder with fresh heads (seeded)."""
    seed_all(cfg.seed)
    return new_student(cfg, name)


def local_fit(sentences: Sequence[Sentence], cfg: TrainConfig, state: dict[str, torch.Tensor], *, epochs: int,
              mu: float = 0.0, seed: int | None = None, progress: bool = False) -> tuple[dict[str, torch.Tensor], dict]:
    """Train from the global ``state`` on this site's labelled ``sentences`` for ``epochs`` epochs
    of the recipe's loop (FedProx when ``mu`` > 0); returns (weights, numbers to report: examples,
    sentences, the last epoch's loss). No dev split: the server chooses nothing by a site's score."""
    if not sentences:
        raise ModelError("this site has no labelled sentences to train on")
    seed_all(cfg.seed if seed is None else seed)
    model, tokenizer = new_student(cfg, "federated")
    load_weights(model, state)
    local = cfg.model_copy(update={"epochs": epochs, "seed": cfg.seed if seed is None else seed})
    use_soft = local.soft_labels and has_soft_targets(sentences)
    examples = build_examples(list(sentences), tokenizer, local)
    objective = LabelObjective(local, use_soft)
    if mu > 0:
        objective = ProximalObjective(objective, {n: t.clone() for n, t in state.items()}, mu)
    history = fit(model, examples, tokenizer.pad_token_id, objective, local, save=lambda m, h: None,
                  progress=progress, desc="local epoch")
    last = history[-1] if history else {}
    return weights(model), {"num-examples": len(examples), "sentences": len(sentences),
                            "train-loss": float(last.get("train_loss", 0.0))}


def save_global(state: dict[str, torch.Tensor], cfg: TrainConfig, out_dir: str | Path, extra: dict | None = None) -> Path:
    """The federated student as an ordinary student folder (``Student.from_pretrained`` loads it)."""
    model, tokenizer = new_student(cfg, Path(out_dir).name)
    load_weights(model, state)
    model.save_pretrained(out_dir, tokenizer, extra)
    return Path(out_dir)
