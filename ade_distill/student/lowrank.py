"""Low-rank factorisation of a student's encoder linears (loaded back by ``AdeStudent.from_pretrained``
when ``low_rank_share`` is set) and the list of those linears that pruning also works on."""

from __future__ import annotations

import torch
from torch import nn


def encoder_linears(model) -> list[tuple[str, nn.Linear]]:
    """The encoder's linear layers (embeddings, classifier and relation head excluded)."""
    base = getattr(model.tagger, model.tagger.base_model_prefix)
    return [(n, m) for n, m in base.named_modules() if isinstance(m, nn.Linear) and "pooler" not in n]


class LowRankLinear(nn.Module):
    """W ~ U diag(S) V^T at rank r: two linears, r * (in + out) weights instead of in * out."""

    def __init__(self, lin: nn.Linear, rank: int) -> None:
        super().__init__()
        U, S, Vh = torch.linalg.svd(lin.weight.detach().float(), full_matrices=False)
        r = min(rank, S.numel())
        sq = S[:r].sqrt()
        self.down = nn.Linear(lin.in_features, r, bias=False)
        self.up = nn.Linear(r, lin.out_features, bias=lin.bias is not None)
        self.down.weight.data.copy_(sq[:, None] * Vh[:r])
        self.up.weight.data.copy_(U[:, :r] * sq[None, :])
        if lin.bias is not None:
            self.up.bias.data.copy_(lin.bias.detach())

    def forward(self, x):
        return self.up(self.down(x))


@torch.no_grad()
def low_rank(model, rank_share: float) -> dict:
    """Replace each encoder linear by its truncated SVD at ``rank_share`` of its full rank, where
    that saves weights; returns the weight counts before and after."""
    before = after = 0
    for name, lin in encoder_linears(model):
        r = saving_rank(lin, rank_share)
        before += lin.weight.numel()
        if r is None:
            after += lin.weight.numel()
            continue
        parent = model.tagger.get_submodule(f"{model.tagger.base_model_prefix}.{name}".rsplit(".", 1)[0])
        setattr(parent, name.rsplit(".", 1)[1], LowRankLinear(lin, r))
        after += r * (lin.in_features + lin.out_features)
    return {"weights_before": before, "weights_after": after}


def saving_rank(lin: nn.Linear, rank_share: float) -> int | None:
    r = max(1, int(round(rank_share * min(lin.in_features, lin.out_features))))
    return r if r * (lin.in_features + lin.out_features) < lin.weight.numel() else None
