"""The PHI guard measured (issue #36): planted identifiers in clinical-style ADE sentences, sent to a
stand-in OpenAI-compatible server on 127.0.0.1 through the real teacher path (policy redact), then
every outgoing request body and every file the run writes scanned for them.

  python benchmarks/phi_eval.py [--n 1200] [--ade 427] [--out reports/phi/phi]
  python benchmarks/phi_eval.py --teacher pipelines/teachers/qwen1.5b-llamacpp-lines.yaml --f1 200

Two test sets, both generated here with Faker (seed 13) from templates:
  A. clinical-style sentences: a patient, a record number, dates, a phone, an e-mail, an address,
     sometimes an age over 89 or a URL, around a (drug, reaction) pair taken from the gold relations
     of ADE fold 0 train (so the damage to drug and reaction words can be counted);
  B. ADE-Corpus-V2 fold 0 test sentences with identifiers inserted before and after them.
Reported: identifiers planted and found per type, how many reached a request body whole or in part
(value_parts: a name's first name left beside its placeholder counts), a cache, the Batch
API file, a run summary or the log (goal: none), the share of gold drug/ADE spans a redaction touches
(goal <= 1%). With --teacher: the local LLM labels --f1 sentences of set B as they are and redacted
(phi: redact forced on the loopback server), and relation F1 against gold is compared.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import logging
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ade_distill.core.paths import shown  # noqa: E402
from ade_distill.core.schema import Entity, Relation, Sentence, write_jsonl  # noqa: E402
from ade_distill.ingest import ingest_ade_splits  # noqa: E402
from ade_distill.pipeline import default_shared_data  # noqa: E402
from ade_distill.teacher.phi import PhiGuard, allow_list, guard_for  # noqa: E402
from ade_distill.teacher.settings import TeacherConfig  # noqa: E402
from ade_distill.workflows.teacher import batch_export, label  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402

TEMPLATES = [
    "{name}, a {age}-year-old {sex} (MRN {mrn}), was admitted on {date} with {effect} after starting {drug}; "
    "contact {phone}.",
    "On {date}, {name} (DOB {dob}) of {street}, {cityline}, reported {effect} two weeks into {drug} therapy.",
    "Dr. {doctor} noted {effect} in {name} after {drug} was given on {date}; e-mail {email}, record {mrn}.",
    "Patient {name}, seen at {street} on {date}, developed {effect} attributed to {drug} (call {phone}).",
    "{drug}-associated {effect} was documented for {name}, MRN {mrn}, on {date}; see {url}.",
    "Follow-up of {name} ({email}, {phone}) on {date}: {effect} resolved after {drug} was stopped.",
]
TYPES = {"name": "NAME", "doctor": "NAME", "mrn": "MRN", "date": "DATE", "dob": "DATE", "phone": "PHONE",
         "email": "EMAIL", "street": "ADDRESS", "cityline": "ADDRESS", "url": "URL", "age": "AGE"}


_FIRST, _LAST = datetime.date(1975, 1, 1), datetime.date(2025, 12, 31)
_BORN_FIRST, _BORN_LAST = datetime.date(1926, 1, 1), datetime.date(2007, 12, 31)


def fake_values(fake, rng: random.Random) -> dict[str, str]:
    old = rng.random() < 0.3
    return {"name": fake.name(), "doctor": fake.last_name(), "mrn": str(fake.random_number(digits=8, fix_len=True)),
            # dates from fixed bounds, not relative to today: the same seed gives the same sets on any day
            "date": fake.date_between_dates(_FIRST, _LAST).strftime(rng.choice(["%m/%d/%Y", "%B %d, %Y", "%Y-%m-%d"])),
            "dob": fake.date_between_dates(_BORN_FIRST, _BORN_LAST).strftime("%m/%d/%Y"),
            "phone": fake.numerify("###-###-####"), "email": fake.email(), "street": fake.street_address(),
            "cityline": f"{fake.city()}, {fake.state_abbr()} {fake.zipcode()}", "url": fake.url() + "case",
            "age": str(rng.randint(90, 104) if old else rng.randint(18, 89)), "sex": rng.choice(["man", "woman"])}


def clinical_set(n: int, pairs: list[tuple[str, str]], seed: int = 13) -> list[tuple[Sentence, dict]]:
    """(sentence with gold drug/ADE spans, {field: planted value}) from the templates."""
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(seed)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tpl = TEMPLATES[i % len(TEMPLATES)]
        drug, effect = rng.choice(pairs)
        vals = fake_values(fake, rng)
        text, spans, planted = "", {}, {}
        for part in _fields(tpl):
            if part.startswith("{"):
                key = part[1:-1]
                v = {"drug": drug, "effect": effect}.get(key, vals.get(key))
                if key in ("drug", "effect"):
                    spans[key] = (len(text), len(text) + len(v))
                elif key != "sex" and (key != "age" or int(v) > 89):
                    planted[key] = v if key != "age" else f"{v}-year-old"
                text += v
            else:
                text += part
        s = Sentence(id=f"A{i}", doc_id=f"A{i}", text=text, source="gold", meta={"doc_source": "text"},
                     entities=[Entity(id="d", label="DRUG", start=spans["drug"][0], end=spans["drug"][1], text=drug),
                               Entity(id="a", label="ADE", start=spans["effect"][0], end=spans["effect"][1], text=effect)],
                     relations=[Relation(drug="d", ade="a")])
        out.append((s, planted))
    return out


# words of a name that identify nobody (titles, degrees, generational suffixes)
_NAME_NOISE = {"dr", "mr", "mrs", "ms", "miss", "md", "dds", "dvm", "phd", "jr", "sr", "ii", "iii", "iv", "v"}


_ADDRESS_WORDS = {"street", "avenue", "road", "lane", "drive", "court", "way", "place", "apt", "suite", "unit",
                  "boulevard", "plaza", "square", "circle", "terrace"}


def value_parts(key: str, value: str) -> list[str]:
    """The pieces of a planted value that identify on their own, so that a value redacted only in part
    ("Heather [NAME_1]", "[ADDRESS_1] 823") counts as leaked: each word of a name (titles left out),
    each run of 3 or more digits of a phone, record number or address, each word of 3 or more letters
    of an address, an e-mail's part before the @, an age. A state abbreviation, a date's pieces (a year
    alone is not an identifier under Safe Harbor) and a URL's are not looked for one by one."""
    kind = TYPES.get(key)
    if kind == "NAME":
        return [w for w in re.findall(r"[A-Za-z][A-Za-z'-]+", value) if w.lower() not in _NAME_NOISE]
    if kind in ("PHONE", "MRN"):
        return re.findall(r"\d{3,}", value)
    if kind == "ADDRESS":  # a street type or a unit word ("Road", "Apt") identifies nobody
        return re.findall(r"\d{3,}", value) + [w for w in re.findall(r"[A-Za-z]{3,}", value)
                                                if w.lower() not in _ADDRESS_WORDS]
    if kind == "EMAIL":
        local = value.split("@")[0]
        return [local] if len(local) >= 3 else []
    if kind == "AGE":
        return [value]
    return []


def _fields(tpl: str) -> list[str]:
    import re

    return [p for p in re.split(r"(\{\w+\})", tpl) if p]


def inserted_set(sentences: list[Sentence], seed: int = 13) -> list[tuple[Sentence, dict]]:
    """ADE corpus sentences with identifiers around them (the gold spans shifted)."""
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(seed + 1)
    rng = random.Random(seed + 1)
    out = []
    for s in sentences:
        v = fake_values(fake, rng)
        pre = f"Patient {v['name']} (MRN {v['mrn']}), seen on {v['date']}: "
        post = f" Contact {v['phone']}."
        text = pre + s.text + post
        ents = [e.model_copy(update={"start": e.start + len(pre), "end": e.end + len(pre)}) for e in s.entities]
        out.append((s.model_copy(update={"id": f"B-{s.id}", "text": text, "entities": ents,
                                         "meta": {"doc_source": "text"}}),
                    {"name": v["name"], "mrn": v["mrn"], "date": v["date"], "phone": v["phone"]}))
    return out


def meddra_terms(out: Path) -> Path:
    """The reaction terms a user's MedDRA release would give the allow-list, stood in for by the LLT and
    PT names (and mentions) of the FDA label annotations' train file (../shared/data/meddra_labels)."""
    recs = json.loads((default_shared_data() / "meddra_labels" / "demner-fushman-train-labels.json").read_text())
    terms = sorted({t for r in recs for ae in r["adverse_events"] for t in (ae[0], ae[1], ae[3]) if isinstance(t, str)})
    out.write_text("\n".join(terms) + "\n", encoding="utf-8")
    return out


def measure(guard: PhiGuard, items: list[tuple[Sentence, dict]], work: Path, name: str, terms: Path) -> dict:
    """Run the teacher path (stand-in server, phi: redact) over the set and scan what left. The stand-in
    style is the guard's: with realistic stand-ins, which can be ordinary names, a planted value that a
    stand-in elsewhere in the set happens to spell is left out of the file scan with the other values
    that are also ordinary text of the set, and counted."""
    reds = {s.id: guard.redact(s.text) for s, _ in items}
    answers = {}  # the stand-in answers each redacted sentence with the gold pairs still in it
    for s, _ in items:
        t = reds[s.id].text
        pairs = [(s.entity(r.drug).text, s.entity(r.ade).text) for r in s.relations]
        answers[t] = json.dumps({"ades": [{"drug": d, "effect": e} for d, e in pairs if d in t and e in t]})
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "input.jsonl", [s for s, _ in items])
    log_buf = io.StringIO()
    handler = logging.StreamHandler(log_buf)
    logging.getLogger("ade_distill").addHandler(handler)
    logging.getLogger("ade_distill").setLevel(logging.INFO)
    with FakeOpenAI(answers) as srv:
        cfg = TeacherConfig(backend="openai", model="remote-model", base_url=srv.base_url, api_key_env=None,
                            confidence="none", response_format="json_object", phi="redact",
                            cache=str(folder / "cache.sqlite"), phi_drugs=str(default_shared_data() / "drugs"),
                            phi_terms=[str(terms)], phi_placeholders=guard.placeholders)
        t0 = time.monotonic()
        res = label([s for s, _ in items], folder / "out.labels.jsonl", cfg, progress=False)
        seconds = time.monotonic() - t0
        bodies = [json.dumps(b) for b in srv.requests]
    batch_export(folder / "input.jsonl", folder / "batch.jsonl", cfg)
    logging.getLogger("ade_distill").removeHandler(handler)
    # each sentence's own request: the one whose last message is its redacted text
    by_text = {}
    for b in srv.requests:
        by_text.setdefault(b["messages"][-1]["content"].removeprefix("Sentence: "), []).append(json.dumps(b))
    per_type, leaked, partly = Counter(), Counter(), Counter()
    for s, planted in items:
        own = "\n".join(by_text.get(reds[s.id].text, []))
        sent = reds[s.id].text
        for key, value in planted.items():
            per_type[TYPES[key]] += 1
            leaked[TYPES[key]] += bool(re.search(rf"(?<!\w){re.escape(value)}(?!\w)", own))
            # a piece of the value in the sentence as sent, unless that piece is also ordinary text of
            # the sentence outside the value (a street called Fall beside a reported fall)
            rest = s.text.replace(value, " ")
            partly[TYPES[key]] += any(re.search(rf"(?<!\w){re.escape(p)}(?!\w)", sent)
                                      and not re.search(rf"(?<!\w){re.escape(p)}(?!\w)", rest)
                                      for p in value_parts(key, value))
    # a value that is also ordinary text of the set ("Johnson" of "Stevens-Johnson syndrome", a doctor
    # called Young) cannot be told apart in a file scan: those are left out of it, and counted
    background = "\n".join(r.text for r in reds.values())
    values = {v for _, planted in items for v in planted.values()}
    ambiguous = {v for v in values if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", background)}
    files = {f.name: f.read_bytes().decode("utf-8", "replace") for f in folder.iterdir()
             if f.is_file() and f.name not in ("input.jsonl", "out.labels.jsonl")}
    files["log"] = log_buf.getvalue()
    scan = [re.compile(rf"(?<!\w){re.escape(v)}(?!\w)") for v in sorted(values - ambiguous)]
    in_files = {fname: sum(1 for rx in scan if rx.search(content)) for fname, content in files.items()}
    spans = damaged = 0
    for s, _ in items:
        red = reds[s.id]
        for e in s.entities:
            spans += 1
            damaged += any(oa < e.end and e.start < ob for _, _, oa, ob, _ in red.pieces)
    found = Counter()
    for r in reds.values():
        found.update(r.found)
    return {"set": name, "sentences": len(items), "planted_by_type": dict(per_type),
            "leaked_in_requests_by_type": dict(leaked), "planted": sum(per_type.values()),
            "leaked_in_requests": sum(leaked.values()), "requests": len(bodies),
            "partly_in_requests_by_type": dict(partly), "partly_in_requests": sum(partly.values()),
            "found_by_type": dict(found), "in_files": in_files, "values_scanned_in_files": len(scan),
            "values_also_ordinary_text": len(ambiguous), "gold_spans": spans, "gold_spans_damaged": damaged,
            "damaged_share": damaged / spans if spans else 0.0, "seconds": round(seconds, 1),
            "labelled": res.stats.labelled, "phi_policy": res.stats.phi_policy}


def onto(pred: Sentence, alt: Sentence, orig: Sentence) -> Sentence:
    """A prediction made on `alt` (the same corpus sentence with other identifiers around it) moved onto
    `orig`'s text, so both are scored against one gold: spans inside the corpus sentence shift by the
    difference of the prefixes; a span in the identifiers (a false positive either way) lands on the
    opening word "Patient" or the closing word "Contact"."""
    pre_alt, pre_orig = alt.text.index(": ") + 2, orig.text.index(": ") + 2
    core_alt_end = alt.text.rindex(" Contact ")
    post_orig = orig.text.rindex(" Contact ") + 1
    ents = []
    for e in pred.entities:
        if e.start >= pre_alt and e.end <= core_alt_end:
            start, end = e.start - pre_alt + pre_orig, e.end - pre_alt + pre_orig
        elif e.start < pre_alt:
            start, end = 0, len("Patient")
        else:
            start, end = post_orig, post_orig + len("Contact")
        ents.append(e.model_copy(update={"start": start, "end": end, "text": orig.text[start:end]}))
    return pred.model_copy(update={"text": orig.text, "entities": ents})


def f1_check(teacher: str, items: list[tuple[Sentence, dict]], n: int, work: Path, terms: Path,
             other: list[tuple[Sentence, dict]] | None = None, note: bool = False) -> dict:
    """The local teacher on n sentences of set B, as they are and redacted: relation F1 vs gold. With
    `other` (the same sentences with a second, independent draw of identifiers, not redacted), also the
    control that says how far the teacher moves when only the identifiers change."""
    from ade_distill.core.schema import read_sentences
    from ade_distill.evaluate import evaluate

    gold = [s for s, _ in items[:n]]
    base = TeacherConfig.from_yaml(teacher)
    out = {}
    preds_of = {}
    # as they are; redacted with typed placeholders ("[NAME_1]"); redacted with surrogates ("Alex Morgan");
    # redacted with realistic stand-ins (phi_placeholders: realistic);
    # as they are with other identifiers (the control)
    runs = [("off", "off", "typed", gold), ("redact", "redact", "typed", gold),
            ("surrogate", "redact", "surrogate", gold), ("realistic", "redact", "realistic", gold)]
    if other:
        runs.append(("other", "off", "typed", [s for s, _ in other[:n]]))
    if note:  # typed placeholders with one line saying what they are (phi_note)
        runs.append(("redact-note", "redact", "typed", gold))
    for policy, phi, placeholders, sents in runs:
        cfg = base.model_copy(update={"phi": phi, "phi_placeholders": placeholders, "cache": str(work / f"f1-{policy}.sqlite"),
                                      "phi_note": policy == "redact-note",
                                      "phi_drugs": str(default_shared_data() / "drugs"), "phi_terms": [str(terms)]})
        res = label(sents, work / f"f1-{policy}.jsonl", cfg, progress=True)
        # sentences sent redacted: counted from the guard itself, as a resumed run labels (and counts) nothing new
        redacted = 0
        if phi == "redact":
            g = guard_for(cfg)
            redacted = sum(bool(g.redact(s.text).pieces) for s in sents)
        preds = list(read_sentences(work / f"f1-{policy}.jsonl"))
        if sents is not gold:
            alt_of, orig_of = {s.id: s for s in sents}, {s.id: s for s in gold}
            preds = [onto(p, alt_of[p.id], orig_of[p.id]) for p in preds]
        preds_of[policy] = preds
        m = evaluate(gold, {policy: preds}, allow_missing=True, n_bootstrap=1000, seed=13)
        rel = m["systems"][policy]["relation"]["strict"]["micro"]
        ent = m["systems"][policy]["entity"]["strict"]["micro"]
        out[policy] = {"relation_f1": round(100 * rel["f1"], 2), "relation_ci": [round(100 * x, 2) for x in rel["ci"]],
                       "entity_f1": round(100 * ent["f1"], 2), "labelled": res.stats.labelled,
                       "seconds": round(res.stats.seconds, 1), "phi_redacted": redacted,
                       "empty_answers": sum(not p.entities for p in preds)}
    # paired: the same bootstrap resamples of the same sentences for every system
    joint = evaluate(gold, preds_of, allow_missing=True, n_bootstrap=1000, seed=13)["paired_bootstrap"]
    out["paired"] = {k: v["relation.strict"] for k, v in joint.items() if k.startswith("off vs ")}
    # churn: sentences whose relation answer (drug text, effect text) differs from the original's
    def answer(s: Sentence) -> frozenset:
        return frozenset((s.entity(r.drug).text.lower(), s.entity(r.ade).text.lower()) for r in s.relations)

    base_answers = {p.id: answer(p) for p in preds_of["off"]}
    for policy, preds in preds_of.items():
        if policy != "off":
            out[policy]["answers_changed"] = sum(answer(p) != base_answers.get(p.id) for p in preds)
    out["sentences"] = n
    out["teacher"] = teacher
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1200, help="clinical-style sentences (set A)")
    ap.add_argument("--ade", type=int, default=427, help="ADE corpus sentences with identifiers (set B)")
    ap.add_argument("--teacher", help="a local teacher YAML for the F1 check")
    ap.add_argument("--f1", type=int, default=200, help="set B sentences the local teacher labels twice")
    ap.add_argument("--control", action="store_true", help="with --teacher: also the same sentences with other "
                    "identifiers, not redacted (how far the teacher moves when only the identifiers change)")
    ap.add_argument("--note", action="store_true", help="with --teacher: also typed placeholders with a line "
                    "telling the teacher what they are (phi_note: true)")
    ap.add_argument("--placeholders", choices=["typed", "surrogate", "realistic"], default="typed",
                    help="the stand-in style of the leak scan's guard (phi_placeholders)")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "phi" / "phi")
    ap.add_argument("--work", type=Path)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="ade-phi-"))
    splits = default_shared_data() / "ade_splits"
    train = list(ingest_ade_splits(splits, 0, "train"))
    pairs = sorted({(s.entity(r.drug).text, s.entity(r.ade).text) for s in train for r in s.relations})
    set_a = clinical_set(a.n, pairs)
    set_b = inserted_set(list(ingest_ade_splits(splits, 0, "test"))[:a.ade])
    work.mkdir(parents=True, exist_ok=True)
    terms = meddra_terms(work / "reaction_terms.txt")
    guard = PhiGuard(allow=allow_list(default_shared_data() / "drugs", terms=[terms]), placeholders=a.placeholders)
    result_path = a.out.with_suffix(".json")
    old = json.loads(result_path.read_text()) if result_path.exists() else {}
    results = {"sets": [measure(guard, set_a, work, "A-clinical", terms),
                        measure(guard, set_b, work, "B-ade-inserted", terms)],
               "placeholders": a.placeholders, "allow_list": {"words": len(guard.allow), "drugs": "../shared/data/drugs (DrugBank open vocabulary, "
                              "Drugs@FDA brands and ingredients)", "reaction_terms": "the LLT and PT names of "
                              "../shared/data/meddra_labels train (a user's MedDRA release stands here)"}}
    if a.teacher:
        other = inserted_set(list(ingest_ade_splits(splits, 0, "test"))[:a.f1], seed=113) if a.control else None
        results["f1"] = f1_check(a.teacher, set_b, a.f1, work, terms, other=other, note=a.note)
    elif "f1" in old:
        results["f1"] = old["f1"]  # the LLM check is kept from the run that made it (see its command)
        results["f1_command"] = old.get("f1_command")
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    cmd = "python benchmarks/phi_eval.py " + " ".join(shown(a) for a in sys.argv[1:])
    results.update(command=cmd.strip(), git_commit=commit)
    if a.teacher:
        results["f1_command"] = cmd.strip()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(results, indent=2) + "\n")
    write_markdown(results, a.out.with_suffix(".md"))
    print(f"-> {a.out.with_suffix('.md')}")


def write_markdown(r: dict, path: Path) -> None:
    lines = ["# The PHI guard, measured", "",
             f"Made by `{r['command']}` (git {r['git_commit']}). Identifiers planted with Faker (seed 13) from templates; "
             f"each sentence sent through the real teacher path (`label`, policy `redact`, phi_placeholders "
             f"`{r.get('placeholders', 'typed')}`) to a stand-in OpenAI-compatible "
             "server on 127.0.0.1 that records every request body; then every file the run wrote (teacher cache, Batch "
             "API export, run summary and info files, failures file) and the log at INFO level scanned for every planted "
             "value.", "",
             "| set | sentences | identifiers planted | in a request body | a piece of one in a request body | in a run file "
             "or the log | gold drug/ADE spans touched by a redaction |", "|---|---|---|---|---|---|---|"]
    for s in r["sets"]:
        files = sum(s["in_files"].values())
        lines.append(f"| {s['set']} | {s['sentences']:,} | {s['planted']:,} | {s['leaked_in_requests']:,} | "
                     f"{s['partly_in_requests']:,} | {files:,} | "
                     f"{s['gold_spans_damaged']:,} of {s['gold_spans']:,} ({s['damaged_share']:.2%}) |")
    lines += ["", "A planted value is looked for in its own sentence's request body (whole words); its pieces (each word "
              "of a name, each run of 3 or more digits of a phone, record number or address, each word of an address, an "
              "e-mail's name) in the sentence as sent, unless the piece is also ordinary text of the sentence (a street "
              "called Fall beside a reported fall): a name redacted only in part (\"Heather [NAME_1]\") counts. In the files and the "
              "log every distinct planted value is looked for, except the few that are also ordinary text of the set "
              "(a doctor called Johnson beside \"Stevens-Johnson syndrome\"): " + "; ".join(
                  f"{s['set']}: {s['values_scanned_in_files']:,} values scanned, {s['values_also_ordinary_text']:,} left "
                  "out" for s in r["sets"]) + ".",
              "", "## Per identifier type", "", "| set | type | planted | reached a request body | a piece of it reached "
              "one | recall (whole value / every piece) |", "|---|---|---|---|---|---|"]
    for s in r["sets"]:
        for t, n in sorted(s["planted_by_type"].items()):
            leak = s["leaked_in_requests_by_type"].get(t, 0)
            part = s.get("partly_in_requests_by_type", {}).get(t, 0)
            lines.append(f"| {s['set']} | {t} | {n:,} | {leak:,} | {part:,} | {1 - leak / n:.1%} / {1 - part / n:.1%} |")
    lines += ["", "Placeholders the guard wrote, by type (it also redacts what was not planted, e.g. a city inside a "
              "sentence):", ""]
    for s in r["sets"]:
        lines.append(f"- {s['set']}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(s["found_by_type"].items())))
    if "f1" in r:
        f = r["f1"]
        lines += ["", "## The teacher on redacted text", "",
                  f"`{r.get('f1_command')}`: the local teacher ({f['teacher']}) labels the first {f['sentences']} sentences "
                  "of set B as they are (phi: off) and redacted (phi: redact, each placeholder style); relation and entity strict F1 against the "
                  "gold spans of the corpus, 95% bootstrap intervals.", "",
                  "| text the teacher saw | relation F1 (CI) | entity F1 | sentences redacted | relation F1 change against the original / "
                  "paired share of resamples where the original scores higher | sentences whose relations differ from the original's "
                  "| sentences the teacher marked nothing in |",
                  "|---|---|---|---|---|---|---|"]
        for policy, label_ in (("off", "original (identifiers in it)"), ("redact", "redacted, typed placeholders ([NAME_1])"),
                               ("surrogate", "redacted, surrogates (Alex Morgan; phi_placeholders: surrogate)"),
                               ("realistic", "redacted, realistic stand-ins (a Census name, a date of the same shape; "
                                             "phi_placeholders: realistic)"),
                               ("redact-note", "redacted, typed placeholders and a line saying what they are (phi_note: true)"),
                               ("other", "control: not redacted, other identifiers (a second Faker draw)")):
            if policy not in f:
                continue
            x = f[policy]
            pair = f.get("paired", {}).get(f"off vs {policy}")
            changed = x.get("answers_changed")
            lines.append(f"| {label_} | {x['relation_f1']:.1f} ({x['relation_ci'][0]:.1f}-{x['relation_ci'][1]:.1f}) | "
                         f"{x['entity_f1']:.1f} | {x['phi_redacted']:,} | "
                         + (f"{-100 * pair['delta_f1']:+.1f} / {pair['p_a_better']:.0%} | " if pair else "- | ")
                         + (f"{changed:,} of {f['sentences']:,} |" if changed is not None else "- |")
                         + (f" {x['empty_answers']:,} |" if "empty_answers" in x else " - |"))
        lines += ["", "The bar (issue #36): relation F1 on redacted text within 2 points of the original. The teacher "
                  "is a small local model whose answers move with any change to a sentence, identifiers included: "
                  "the paired share says how often, over bootstrap resamples of the same sentences, the original "
                  "text scored higher"
                  + ("; the control row is the same text with other identifiers and no redaction, so its change is "
                     "what swapping identifiers alone does to this teacher." if "other" in f else ".")]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
