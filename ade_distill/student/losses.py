"""Hard and soft (knowledge-distillation) losses for tags and relations."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hard_tag_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over labelled pieces (label -100 is ignored); ``weights`` per sequence."""
    ce = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")  # (B, T)
    mask = (labels != -100).float()
    if weights is not None:
        mask = mask * weights[:, None]
    return (ce * mask).sum() / mask.sum().clamp(min=1.0)


def kd_loss(logits: torch.Tensor, teacher_scores: torch.Tensor, mask: torch.Tensor, T: float = 2.0,
            weights: torch.Tensor | None = None) -> torch.Tensor:
    """Knowledge distillation, the one KD term of every stage (Hinton et al. 2015):
    T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged over the masked pieces.

    ``teacher_scores`` (B, L, C) are logits or log-probabilities (the same distribution up to a
    constant: an LLM teacher's confidences enter as log p, an earlier student as its logits);
    ``mask`` (B, L) marks the pieces that carry a target; ``weights`` is per sequence."""
    log_s = F.log_softmax(logits / T, dim=-1)
    log_t = F.log_softmax(teacher_scores.float() / T, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # (B, L)
    m = mask.to(kl.dtype)
    if weights is not None:
        m = m * weights[:, None]
    return (T * T) * (kl * m).sum() / m.sum().clamp(min=1.0)


def kd_tag_loss(logits: torch.Tensor, teacher_probs: torch.Tensor, mask: torch.Tensor, T: float = 2.0,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """KD to teacher tag distributions ``teacher_probs`` (B, L, C): ``kd_loss`` on their logs."""
    return kd_loss(logits, torch.log(teacher_probs.clamp(min=1e-6)), mask, T, weights)


def tag_loss(logits, labels, teacher_probs=None, soft_mask=None, *, alpha: float = 0.5, T: float = 2.0,
             weights=None) -> torch.Tensor:
    """(1 - alpha) * hard CE + alpha * KD; plain CE when there are no soft targets or alpha is 0."""
    hard = hard_tag_loss(logits, labels, weights)
    if teacher_probs is None or alpha == 0.0:
        return hard
    return (1.0 - alpha) * hard + alpha * kd_tag_loss(logits, teacher_probs, soft_mask, T, weights)


def relation_loss(logits: torch.Tensor, hard: torch.Tensor, soft: torch.Tensor | None = None, *,
                  alpha: float = 0.5, T: float = 1.0, pos_weight: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy on candidate pairs: hard 0/1 targets mixed with the teacher's
    pair confidences (tempered: sigmoid(logit(p)/T)), the soft part scaled by T^2."""
    if logits.numel() == 0:
        return logits.sum()
    pw = torch.tensor(pos_weight, device=logits.device)
    h = F.binary_cross_entropy_with_logits(logits, hard, pos_weight=pw)
    if soft is None or alpha == 0.0:
        return h
    soft_t = torch.sigmoid(torch.logit(soft.clamp(1e-4, 1 - 1e-4)) / T)
    s = F.binary_cross_entropy_with_logits(logits / T, soft_t) * T * T
    return (1.0 - alpha) * h + alpha * s
