"""Smaller students without training: magnitude pruning and low-rank factorisation of the encoder's
linear layers (``ade-distill compress --method prune|low-rank``), each measured by the same scorer
as the distilled ones."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import InputError
from .lowrank import encoder_linears, saving_rank
from .model import AdeStudent, load_student


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
