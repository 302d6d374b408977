"""Federated distillation (``ade-distill federate``): sites label and train locally on Flower,
the server aggregates weights only; the result is an ordinary student folder plus
federation.json (rounds, bytes per round, seconds per round, sites that failed or were refused)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..apps.federate import FederateSettings, round_bytes, simulate
from ..student.train import TrainConfig
from .student import train_config


@dataclass
class FederateResult:
    out: Path
    summary: dict

    def lines(self) -> list[str]:
        s = self.summary
        rounds = s["rounds"]
        per_round = [round_bytes(r) for r in rounds]
        lines = [f"federated student ({s['settings']['strategy']}, {s['sites']} sites, {len(rounds)} rounds of "
                 f"{s['settings']['local_epochs']} local epoch(s)) -> {self.out}",
                 f"per round: {sum(per_round) / max(len(rounds), 1) / 1e6:,.1f} MB sent and received (weights only), "
                 f"{sum(r['seconds'] for r in rounds) / max(len(rounds), 1):,.1f} s"]
        for r in rounds:
            for f in r["failed"] + r["refused"]:
                lines.append(f"round {r['round']}: node {f['node']} left out ({f['reason']}); the round went on "
                             f"with {len(r['sites'])} site(s)")
        return lines


def federate(sites: Sequence[str | Path], out: str | Path, config: TrainConfig | str | Path | None = None, *,
             rounds: int = FederateSettings().rounds, local_epochs: int = FederateSettings().local_epochs,
             strategy: str = FederateSettings().strategy, mu: float = FederateSettings().mu,
             min_sites: int | None = None, **overrides) -> FederateResult:
    """Distil one student across ``sites`` (folders, each read only by its own Flower worker) in
    Flower's simulation engine; ``config`` and ``overrides`` are the student recipe (TrainConfig).
    A rerun after a kill resumes from the last finished round."""
    cfg = train_config(config, **overrides)
    settings = FederateSettings(rounds=rounds, local_epochs=local_epochs, strategy=strategy, mu=mu, min_sites=min_sites)
    summary = simulate([Path(s) for s in sites], cfg.model_dump_json(), settings, Path(out))
    return FederateResult(Path(out), summary)
