"""The PubMed-scale cost model (issue #32, item 4) from the screening cascade's measured rates:
core-hours and days on one 2-core machine to screen all of PubMed once and per 10,000 abstracts of
update, for the student alone, the full cascade and the local teacher, beside the API teacher's list
and Batch API prices for the same sentences.

  python benchmarks/screen_cost.py [--abstracts 36000000]

Reads reports/screen_speed/screen_speed.json (one run of benchmarks/screen_speed.py: rates, sentences
per abstract of each stream) and reports/screen/scale.json (the teacher's measured tokens a sentence,
the API list prices); runs no model. Writes reports/screen_speed/cost.md and cost.json. PubMed's size
is an input (the issue's 36 million abstracts); sentences per abstract are each stream's own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.schema import atomic_open  # noqa: E402


def rows_for(speed: dict, scale: dict, stream: str, abstracts: float) -> list[dict]:
    rows = {(r["row"], r["part"]): r for r in speed["rows"] if r["stream"] == stream}
    alone, cascade = rows[("student alone", "prefix")], rows[("+ drug prefilter + gate", "stream")]
    per_abstract = cascade["sentences"] / cascade["abstracts"]
    cores = speed["cpus"]
    out = []

    def local(what: str, abstracts_per_s: float, source: str) -> None:
        hours = abstracts / abstracts_per_s / 3600
        out.append({"stream": stream, "what": what, "abstracts_per_s": round(abstracts_per_s, 3),
                    "core_hours": round(hours * cores, 1), "days_on_one_machine": round(hours / 24, 1),
                    "core_hours_per_10k_abstracts": round(10_000 / abstracts_per_s / 3600 * cores, 3),
                    "usd_list": None, "usd_batch": None, "source": source})

    local("student alone", alone["abstracts_per_s"], f"screen_speed.json, stream {stream}, prefix run")
    local("full cascade (drug prefilter + gate + student)", cascade["abstracts_per_s"],
          f"screen_speed.json, stream {stream}, whole stream")
    local("teacher LLM, local (lines prompt)", speed["teacher"]["sentences_per_s"] / per_abstract,
          f"screen_speed.json teacher sample ({speed['teacher']['sentences']} sentences), "
          f"{per_abstract:.2f} sentences an abstract")
    t = scale["teacher"]
    p_tok, c_tok = t["prompt_tokens"] / t["labelled"], t["completion_tokens"] / t["labelled"]
    for name, (pin, pout) in scale["prices_usd_per_1m_tokens"].items():
        usd = abstracts * per_abstract * (p_tok * pin + c_tok * pout) / 1e6
        out.append({"stream": stream, "what": f"teacher via the {name} API", "abstracts_per_s": None,
                    "core_hours": None, "days_on_one_machine": None, "core_hours_per_10k_abstracts": None,
                    "usd_list": round(usd), "usd_batch": round(usd / 2), "usd_list_per_10k_abstracts":
                    round(usd * 10_000 / abstracts, 2),
                    "source": f"scale.json (its teacher run): {p_tok:.0f} prompt + {c_tok:.1f} completion tokens a sentence "
                              f"(Qwen tokenizer), ${pin}/${pout} per 1M; Batch API at half price"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--abstracts", type=float, default=36e6, help="PubMed's size in abstracts (an input)")
    ap.add_argument("--speed", type=Path, default=REPO / "reports" / "screen_speed" / "screen_speed.json")
    ap.add_argument("--scale", type=Path, default=REPO / "reports" / "screen" / "scale.json")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "screen_speed")
    a = ap.parse_args()
    speed, scale = json.loads(a.speed.read_text()), json.loads(a.scale.read_text())
    if not scale.get("prices_usd_per_1m_tokens"):
        raise SystemExit(f"{a.scale}: no prices_usd_per_1m_tokens (rerun benchmarks/screen_scale.py)")
    rows = [r for s in ("A", "B") for r in rows_for(speed, scale, s, a.abstracts)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip()
    n = f"{a.abstracts / 1e6:,.0f} million"

    def num(x, fmt="{:,.1f}"):
        return "-" if x is None else fmt.format(x)

    lines = [f"# Screening all of PubMed: what it costs ({n} abstracts, an input)", "",
             f"Made by `python benchmarks/screen_cost.py` (git {commit}) from the rates of one run of "
             f"`{speed['command']}` (git {speed['git']}, {speed['cpus']} cores; [screen_speed.md](screen_speed.md)) and the "
             "teacher's measured tokens a sentence and the list prices in [../screen/scale.json](../screen/scale.json). "
             "Stream A: ADE-Corpus-V2 case reports (drug-dense, the prefilter's worst case); stream B: A mixed with "
             "BioScope (closer to PubMed at large). Each stream's own sentences an abstract are used. Core-hours: "
             "machine hours times the cores (what a cloud bill counts); a weekly update is priced by the per-10,000 "
             "column, scaled to its size.", "",
             "| stream | what | abstracts/s | core-hours, all of PubMed | days on one machine | core-hours per 10,000 abstracts | USD list (all) | USD Batch API (all) | USD list per 10,000 | from |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['stream']} | {r['what']} | {num(r['abstracts_per_s'], '{:,.2f}')} | {num(r['core_hours'])} | "
                     f"{num(r['days_on_one_machine'])} | {num(r['core_hours_per_10k_abstracts'], '{:,.3f}')} | "
                     f"{num(r['usd_list'], '{:,.0f}')} | {num(r['usd_batch'], '{:,.0f}')} | "
                     f"{num(r.get('usd_list_per_10k_abstracts'), '{:,.2f}')} | {r['source']} |")
    lines += ["", "The API rows price every sentence of the stream, as a teacher screening alone would read them; "
              "they exclude retries and prompt-caching discounts, and OpenAI's tokenizer counts somewhat differently "
              "from Qwen's."]
    with atomic_open(a.out / "cost.md") as fh:
        fh.write("\n".join(lines) + "\n")
    with atomic_open(a.out / "cost.json") as fh:
        json.dump({"abstracts": a.abstracts, "git": commit, "rows": rows}, fh, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
