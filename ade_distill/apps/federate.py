"""Federated distillation on Flower: sites label their own text with their own teacher and train
the student locally; the server aggregates weights only (FedAvg, or FedProx).

A *site* is a folder the site alone reads: ``sentences.jsonl`` (its text; unlabeled, or already
teacher-labelled), optionally ``teacher.yaml`` (its own teacher endpoint) and, once labelled,
``labels.jsonl`` (written there, never sent). Every message the server receives goes through
``ReplyAudit`` before aggregation: a reply must hold exactly the student's trainable weights (the
names and shapes of the round's global weights) and numeric counts; anything else is refused and
recorded. A site that fails or drops out is reported and the round goes on with the others.

The same ``ServerApp``/``ClientApp`` run in Flower's simulation engine (one machine, each site a
Ray worker process; ``run_simulation``) or deployed: ``server_app``/``client_app`` below read their
settings from the run config and each SuperNode's node config (``site-dir``). docs/federated.md
has the commands.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import AdeDistillError, InputError
from ..core.schema import atomic_open, read_sentences

log = logging.getLogger(__name__)

# the only numbers a site may report (no text, no ids, no per-sentence values)
SITE_METRICS = {"num-examples", "sentences", "train-loss", "site"}


class FederationError(AdeDistillError, RuntimeError):
    pass


class FederateSettings(BaseModel):
    """How the federation runs (``ade-distill federate``, or a pipeline's ``federate:`` section)."""

    model_config = ConfigDict(extra="forbid")
    rounds: int = Field(default=3, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    mu: float = Field(default=0.01, ge=0)  # FedProx's proximal weight
    min_sites: int | None = Field(default=None, ge=1)  # a round needs this many replies (default: 1)
    round_timeout_s: float = Field(default=3600, gt=0)


# ---------------------------------------------------------------- a site

def site_labels(site: Path, teacher_yaml: Path | None = None, progress: bool = False) -> list:
    """The site's teacher-labelled sentences: ``sentences.jsonl`` as it is when already labelled,
    else ``labels.jsonl``, labelled (and resumed) with the site's own ``teacher.yaml``."""
    from ..teacher import Teacher, TeacherConfig

    src = site / "sentences.jsonl"
    if not src.exists():
        raise InputError(f"{site}: no sentences.jsonl (a site folder holds its own text)")
    sentences = list(read_sentences(src))
    if sentences and all(s.source.startswith(("teacher:", "synthetic:")) for s in sentences):
        return sentences
    out = site / "labels.jsonl"
    done = {s.id for s in read_sentences(out)} if out.exists() else set()
    if not {s.id for s in sentences} <= done:
        yaml_path = teacher_yaml or site / "teacher.yaml"
        if not yaml_path.exists():
            raise InputError(f"{site}: sentences.jsonl is not labelled and there is no teacher.yaml to label it with")
        with Teacher(TeacherConfig.from_yaml(yaml_path)) as t:
            stats = t.label(sentences, out, progress=progress)
        if stats.failed:
            log.warning("site %s: %d sentence(s) not labelled (see %s)", site.name, stats.failed,
                        out.with_name("labels.failures.jsonl"))
    return list(read_sentences(out))


def site_dir(context, sites: Sequence[str] | None) -> tuple[Path, int]:
    """This node's site folder and index: the node config's ``site-dir`` (deployed), else the
    simulation's partition id into ``sites``."""
    nc = context.node_config
    if "site-dir" in nc:
        return Path(str(nc["site-dir"])), int(nc.get("site-index", -1))
    if sites is None:
        raise FederationError("this SuperNode has no site-dir in its node config (--node-config \"site-dir='...'\")")
    i = int(nc["partition-id"])
    return Path(sites[i]), i


def client_app(sites: Sequence[str] | None = None):
    """The site's side: label locally, train from the global weights, send weights and counts."""
    from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context) -> Message:
        import torch

        from ..student.federated import local_fit
        from ..student.train import TrainConfig

        torch.set_num_threads(1)
        site, index = site_dir(context, sites)
        config = msg.content["config"]
        cfg = TrainConfig.model_validate_json(str(config["recipe"]))
        sentences = site_labels(site)
        state = msg.content["arrays"].to_torch_state_dict()
        rnd = int(config["server-round"])
        new, numbers = local_fit(sentences, cfg, state, epochs=int(config["local-epochs"]),
                                 mu=float(config.get("proximal-mu", 0.0)), seed=cfg.seed + 1000 * rnd + max(index, 0))
        return Message(RecordDict({"arrays": ArrayRecord(new), "metrics": MetricRecord({**numbers, "site": index})}),
                       reply_to=msg)

    return app


# ---------------------------------------------------------------- the server

@dataclass
class ReplyAudit:
    """Every reply the server receives, checked before aggregation: the round, the site, bytes
    received, and what was refused or failed."""
    expected: dict[str, tuple[int, ...]]  # weight name -> shape
    rounds: list[dict] = field(default_factory=list)
    offset: int = 0  # rounds done before a resume

    def check(self, content) -> str | None:
        """Why a reply's content is not weights and counts only (None when it is)."""
        if set(content.config_records.keys()):
            return "a config record (strings) in the reply"
        if set(content.array_records.keys()) != {"arrays"} or set(content.metric_records.keys()) != {"metrics"}:
            return f"records {sorted(content.keys())} (expected arrays and metrics)"
        arrays = content.array_records["arrays"]
        if set(arrays.keys()) != set(self.expected):
            return "array names are not the student's weights"
        for name, arr in arrays.items():
            if tuple(arr.shape) != self.expected[name] or not str(arr.dtype).startswith("float"):
                return f"array {name} is not a float weight of the student's shape"
        metrics = content.metric_records["metrics"]
        if not set(metrics.keys()) <= SITE_METRICS:
            return f"unexpected metrics {sorted(set(metrics.keys()) - SITE_METRICS)}"
        if not all(isinstance(v, (int, float)) for v in metrics.values()):
            return "a metric that is not one number"
        return None

    def filter(self, replies, sent_bytes: int, seconds: float) -> list:
        kept, entry = [], {"round": self.offset + len(self.rounds) + 1, "sent_bytes": sent_bytes,
                           "seconds": round(seconds, 2), "sites": [], "failed": [], "refused": []}
        for msg in replies:
            node = int(msg.metadata.src_node_id)
            if msg.has_error():
                entry["failed"].append({"node": node, "reason": str(msg.error.reason)[:300]})
                continue
            why = self.check(msg.content)
            if why:
                entry["refused"].append({"node": node, "reason": why})
                continue
            m = msg.content.metric_records["metrics"]
            entry["sites"].append({"node": node, "site": int(m.get("site", -1)), "sentences": int(m.get("sentences", 0)),
                                   "examples": int(m["num-examples"]), "train_loss": round(float(m.get("train-loss", 0)), 4),
                                   "received_bytes": int(msg.content.array_records["arrays"].count_bytes())})
            kept.append(msg)
        self.rounds.append(entry)
        for f in entry["failed"] + entry["refused"]:
            log.warning("round %d: node %d left out: %s", entry["round"], f["node"], f["reason"])
        return kept


def round_bytes(entry: dict) -> int:
    """Bytes one audited round moved: the global weights sent to every site and each site's reply."""
    return entry["sent_bytes"] + sum(x["received_bytes"] for x in entry["sites"])


class AuditedGrid:
    """The Flower grid with every reply passed through the audit (and timed)."""

    def __init__(self, grid, audit: ReplyAudit) -> None:
        self._grid, self.audit = grid, audit

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        sent = sum(int(m.content.array_records["arrays"].count_bytes()) for m in messages
                   if "arrays" in m.content.array_records)
        t0 = time.monotonic()
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        if not messages:
            return replies
        return self.audit.filter(replies, sent, time.monotonic() - t0)


def _fingerprint(recipe_json: str, settings: FederateSettings, n_sites: int) -> dict:
    return {"recipe": json.loads(recipe_json), "settings": settings.model_dump(), "sites": n_sites}


def run_server(grid, recipe_json: str, settings: FederateSettings, out: Path, n_sites: int) -> dict:
    """The federation's rounds, checkpointed after each one under ``out/rounds`` (a rerun after a
    kill resumes from the last finished round), then the student saved in ``out``."""
    from flwr.app import ArrayRecord, ConfigRecord
    from flwr.serverapp.strategy import FedAvg, FedProx
    from safetensors.torch import load_file, save_file

    from ..student.federated import initial_student, save_global, weights
    from ..student.train import TrainConfig

    cfg = TrainConfig.model_validate_json(recipe_json)
    ckpt, state_file = out / "rounds", out / "rounds" / "state.json"
    ckpt.mkdir(parents=True, exist_ok=True)
    fp = _fingerprint(recipe_json, settings, n_sites)
    done, history = 0, []
    model, _ = initial_student(cfg)
    state = weights(model)
    if state_file.exists():
        prev = json.loads(state_file.read_text())
        if prev["fingerprint"] != fp:
            raise FederationError(f"{out}: holds rounds of another federation (other recipe, settings or sites); "
                                  "use a new --out")
        done, history = prev["round"], prev["audit"]
        if done:
            state = load_file(str(ckpt / "global.safetensors"))
            log.info("resuming after round %d of %d", done, settings.rounds)
    audit = ReplyAudit({n: tuple(t.shape) for n, t in state.items()}, offset=done)
    min_sites = settings.min_sites or 1
    common = dict(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=n_sites, min_available_nodes=n_sites,
                  min_evaluate_nodes=0)
    strategy = FedProx(proximal_mu=settings.mu, **common) if settings.strategy == "fedprox" else FedAvg(**common)

    def checkpoint(server_round: int, arrays) -> None:
        if server_round == 0:
            return None
        entry = audit.rounds[-1]
        if len(entry["sites"]) < min_sites:
            raise FederationError(f"round {entry['round']}: {len(entry['sites'])} site(s) answered, "
                                  f"fewer than min_sites {min_sites}")
        tmp = ckpt / "global.safetensors.tmp"
        save_file({k: v.contiguous() for k, v in arrays.to_torch_state_dict().items()}, str(tmp))
        tmp.replace(ckpt / "global.safetensors")
        with atomic_open(state_file) as fh:
            json.dump({"fingerprint": fp, "round": done + server_round, "audit": history + audit.rounds}, fh, indent=1)
        return None

    remaining = settings.rounds - done
    if remaining > 0:
        result = strategy.start(grid=AuditedGrid(grid, audit), initial_arrays=ArrayRecord(state), num_rounds=remaining,
                                timeout=settings.round_timeout_s,
                                train_config=ConfigRecord({"recipe": recipe_json, "local-epochs": settings.local_epochs}),
                                evaluate_fn=checkpoint)
        final = result.arrays.to_torch_state_dict()
    else:
        final = state
    rounds = history + audit.rounds
    summary = {"status": "complete", "rounds": rounds, "settings": settings.model_dump(), "sites": n_sites,
               "weights": len(final), "weight_bytes": int(sum(t.numel() * t.element_size() for t in final.values())),
               "failed_or_refused": sum(len(r["failed"]) + len(r["refused"]) for r in rounds)}
    save_global(final, cfg, out, {"federated": {k: v for k, v in summary.items() if k != "rounds"}})
    with atomic_open(out / "federation.json") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return summary


def server_app_for(recipe_json: str, settings: FederateSettings, out: Path, n_sites: int):
    """A ServerApp bound to these settings (the simulation path)."""
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        run_server(grid, recipe_json, settings, out, n_sites)

    return app


def simulate(sites: Sequence[Path], recipe_json: str, settings: FederateSettings, out: Path, *,
             cpus_per_site: float = 1.0) -> dict:
    """Run the federation in Flower's simulation engine: each site a Ray worker process that reads
    only its own folder. Returns federation.json's content."""
    import os

    from flwr.simulation import run_simulation

    sites = [Path(s).resolve() for s in sites]
    for s in sites:
        if not (s / "sentences.jsonl").exists():
            raise InputError(f"{s}: not a site folder (no sentences.jsonl)")
    out = Path(out).resolve()
    (out / "federation.json").unlink(missing_ok=True)
    cpus = os.cpu_count() or 1
    backend = {"client_resources": {"num_cpus": min(cpus_per_site, cpus), "num_gpus": 0.0},
               "init_args": {"num_cpus": cpus, "include_dashboard": False}}
    run_simulation(server_app=server_app_for(recipe_json, settings, out, len(sites)),
                   client_app=client_app([str(s) for s in sites]), num_supernodes=len(sites),
                   backend_config=backend)
    done = out / "federation.json"
    if not done.exists():
        raise FederationError(f"the federation did not finish (see the log above); rerun the same command to resume "
                              f"from {out / 'rounds'}")
    return json.loads(done.read_text())


# ---------------------------------------------------------------- deployed (flwr run)

def _deployed_server():
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid, context) -> None:
        rc = context.run_config
        settings = FederateSettings(**{k.replace("-", "_"): v for k, v in rc.items()
                                       if k.replace("-", "_") in FederateSettings.model_fields})
        from ..student.train import TrainConfig

        recipe = TrainConfig.from_yaml(str(rc["recipe"])) if "recipe" in rc else TrainConfig()
        run_server(grid, recipe.model_dump_json(), settings, Path(str(rc.get("out", "runs/federated"))),
                   int(rc.get("sites", 2)))

    return app


def __getattr__(name: str):
    """``server_app`` and ``client_app_deployed``: the apps a Flower App's pyproject names
    (created on first use, so importing this module needs no Flower)."""
    if name == "server_app":
        return _deployed_server()
    if name == "client_app_deployed":
        return client_app(None)
    raise AttributeError(name)
