"""Rank every model of a run by quality, speed, size and cost, with the Pareto front marked.

``ade-distill rank --gold test.jsonl --model NAME=DIR[:int8] ... --pred NAME=FILE ... --out DIR``

Student folders are scored and timed here, side by side in one process on the CPU (batch 32
throughput as the median of repeats, batch 1 latency p50/p95 over single sentences); systems
given as prediction files (the teacher LLM) bring their speed and cost from a sidecar
``<file>.info.json``. Cost for students is compute: CPU core-seconds at a price per core-hour.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..evaluate.metrics import evaluate
from ..core.schema import Sentence, atomic_open


def _folder_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.glob("*.safetensors"))


def measure_student(model_dir: str | Path, gold: Sequence[Sentence], *, quantize: str | None = None,
                    threads: int = 2, repeats: int = 3, latency_sentences: int = 100,
                    core_hour_usd: float = 0.05) -> tuple[list[Sentence], dict]:
    import torch

    from ..student.extract import Student, time_extraction

    ex = Student.from_pretrained(model_dir, quantize=quantize, device="cpu", threads=threads, batch_size=32)
    params = sum(p.numel() for p in ex.model.parameters())
    if quantize:
        buf = io.BytesIO()
        torch.save(ex.model.state_dict(), buf)
        size = buf.tell()
        params = sum(p.numel() for p in Student.from_pretrained(model_dir, device="cpu").model.parameters())
    else:
        size = _folder_bytes(Path(model_dir))
    preds = ex.predict(gold)
    b32 = time_extraction(ex, gold, repeats=repeats)
    ex.batch_size = 1
    lat = []
    for s in gold[:latency_sentences]:
        t = time.perf_counter()
        ex.predict([s])
        lat.append(time.perf_counter() - t)
    sps = b32["sentences_per_second"]
    info = {"kind": "student", "parameters": params, "bytes": size, "threads": threads,
            "sentences_per_second": round(sps, 1), "sentences_per_second_batch1": round(1 / float(np.mean(lat)), 1),
            "latency_ms_p50": round(1000 * float(np.percentile(lat, 50)), 1),
            "latency_ms_p95": round(1000 * float(np.percentile(lat, 95)), 1),
            "cost_usd_per_1k_sentences": round(1000 / sps * threads * core_hour_usd / 3600, 6)}
    return preds, info


def pareto(points: Mapping[str, tuple[float, float]]) -> set[str]:
    """Names not dominated on (quality, speed): nothing else is at least as good on both and
    better on one."""
    front = set()
    for a, (fa, sa) in points.items():
        if not any((fb >= fa and sb >= sa) and (fb > fa or sb > sa) for b, (fb, sb) in points.items() if b != a):
            front.add(a)
    return front


def rank(gold: Sequence[Sentence], students: Mapping[str, tuple[str, str | None]],
         predictions: Mapping[str, tuple[Sequence[Sentence], dict]], *, threads: int = 2,
         n_bootstrap: int = 1000, core_hour_usd: float = 0.05, progress=print) -> dict:
    systems, info = {}, {}
    for name, (d, q) in students.items():
        progress(f"measuring {name} ({d}{', ' + q if q else ''})")
        systems[name], info[name] = measure_student(d, gold, quantize=q, threads=threads,
                                                    core_hour_usd=core_hour_usd)
        info[name]["model"] = str(d)
    for name, (preds, i) in predictions.items():
        systems[name], info[name] = list(preds), {"kind": "predictions", **i}
    m = evaluate(gold, systems, n_bootstrap=n_bootstrap, info=info)
    rows = []
    for name, s in m["systems"].items():
        i = info[name]
        rows.append({"system": name,
                     "relation_f1": s["relation"]["strict"]["micro"]["f1"], "relation_ci": s["relation"]["strict"]["micro"].get("ci"),
                     "entity_f1": s["entity"]["strict"]["micro"]["f1"], "entity_ci": s["entity"]["strict"]["micro"].get("ci"),
                     **{k: i.get(k) for k in ("parameters", "bytes", "sentences_per_second", "sentences_per_second_batch1",
                                              "latency_ms_p50", "latency_ms_p95", "cost_usd_per_1k_sentences",
                                              "gpu_sentences_per_second")}})
    front = pareto({r["system"]: (r["relation_f1"], r["sentences_per_second"] or 0.0) for r in rows})
    for r in rows:
        r["pareto"] = r["system"] in front
    rows.sort(key=lambda r: -r["relation_f1"])
    return {"n_sentences": len(gold), "threads": threads, "core_hour_usd": core_hour_usd, "rows": rows}


def _fmt(r: dict) -> list[str]:
    def f1(v, ci):
        return f"{100 * v:.1f}" + (f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]" if ci else "")

    def num(v, fmt):
        return "–" if v is None else format(v, fmt)

    return [("**" + r["system"] + "**") if r["pareto"] else r["system"], f1(r["relation_f1"], r["relation_ci"]),
            f1(r["entity_f1"], r["entity_ci"]), num(r["parameters"] and r["parameters"] / 1e6, ".1f"),
            num(r["bytes"] and r["bytes"] / 2**20, ".1f"), num(r["sentences_per_second"], ".1f"),
            num(r["sentences_per_second_batch1"], ".1f"), num(r["latency_ms_p50"], ".1f"),
            num(r["latency_ms_p95"], ".1f"), num(r["cost_usd_per_1k_sentences"], ".5f"),
            "yes" if r["pareto"] else ""]


HEAD = ["#", "system", "relation F1", "entity F1", "params (M)", "size (MiB)", "CPU sent/s b32", "CPU sent/s b1",
        "p50 ms", "p95 ms", "$ / 1k sent", "Pareto"]


def write_rank(result: dict, out_dir: str | Path, *, command: str | None = None) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "rank.json") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")
    lines = ["# Models ranked by relation F1 (strict), with speed, size and cost", "",
             f"{result['n_sentences']:,} test sentences; CPU numbers on {result['threads']} threads; student cost = "
             f"core-seconds at ${result['core_hour_usd']}/core-hour; **bold** = on the Pareto front of "
             "(relation F1, CPU sentences/s at batch 32).", "",
             "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join([str(i)] + _fmt(r)) + " |" for i, r in enumerate(result["rows"], 1)]
    if command:
        lines += ["", f"Command: `{command}`"]
    with atomic_open(out / "rank.md") as fh:
        fh.write("\n".join(lines) + "\n")
    # points carry their row number (as in rank.md); the names sit in a list beside the plot, so a
    # cluster of similar students stays readable
    rows = result["rows"]
    fig, (ax, key) = plt.subplots(1, 2, figsize=(10.5, 5), gridspec_kw={"width_ratios": [3, 2]})
    for i, r in enumerate(rows, 1):
        x = r["sentences_per_second"] or 0
        ax.scatter([x], [100 * r["relation_f1"]], c="tab:red" if r["pareto"] else "tab:blue", s=36, zorder=3)
        ax.annotate(str(i), (x, 100 * r["relation_f1"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("CPU sentences per second (batch 32, log scale)")
    ax.set_ylabel("relation F1 (strict, %)")
    ax.set_title("Quality against speed (red: Pareto front)")
    ax.grid(alpha=0.3)
    key.axis("off")
    size = 8 if len(rows) <= 24 else 6
    for i, r in enumerate(rows, 1):
        key.text(0, 1 - (i - 0.5) / max(len(rows), 12), f"{i:>2}  {r['system']}  ({100 * r['relation_f1']:.1f})",
                 fontsize=size, color="tab:red" if r["pareto"] else "black", va="center", family="monospace",
                 transform=key.transAxes)
    fig.tight_layout()
    tmp = out / ".rank.png.tmp"
    fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    tmp.replace(out / "rank.png")
    return {"json": out / "rank.json", "md": out / "rank.md", "png": out / "rank.png"}
