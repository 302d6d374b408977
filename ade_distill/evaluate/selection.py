"""Helpers of the recipe-selection benchmarks (benchmarks/dev_selection.py, distill_gap_dev.py):
a variant given on the command line, and a system's strict micro scores in percent."""

from __future__ import annotations

import yaml


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME`` or ``NAME=key:value[,key:value...]`` (values read as YAML) -> (name, settings)."""
    name, _, rest = text.partition("=")
    settings = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"variant {text!r}: write key:value, not {part!r}")
        settings[key] = yaml.safe_load(value)
    return name, settings


def strict_scores(metrics: dict, system: str) -> dict:
    """Relation and entity strict micro precision, recall, F1 and the F1 interval, in percent."""
    out = {}
    for kind in ("relation", "entity"):
        s = metrics["systems"][system][kind]["strict"]["micro"]
        out[kind] = {k: round(100 * s[k], 2) for k in ("precision", "recall", "f1")}
        out[kind]["ci"] = [round(100 * x, 2) for x in s["ci"]]
    return out
