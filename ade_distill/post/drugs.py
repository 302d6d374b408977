"""Drug mentions -> substances (name, DrugBank ID, UNII): the open DrugBank vocabulary (names and
synonyms) and the Drugs@FDA products table (brand -> active ingredients), with salt and ester forms
folded ("atorvastatin calcium" -> atorvastatin) and a user's own product list on top.

Lookups are exact on a normal form (lower case, hyphens and spaces alike, trailing dose and route
words dropped), then on the salt-folded form, then through the brand table (a multi-word brand's
first word too, "Adriamycin" of ADRIAMYCIN PFS, when all its brands share one ingredient list), then
the drug classes the package ships (resources/drugs/classes.txt: "G-CSF", "corticosteroids" name a
class, not a substance), then as an INN would word it ("alfa interferon"), an anion as its acid
("hopantenate") or a plural; a mention that none of these finds is "not normalised" (never a guess,
no fuzzy match). Building the tables reads the two files once
(about 70,000 names); a lookup is a dictionary access.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from ..core.errors import InputError

# salt, ester and hydrate words folded away (a substance is named without its counter-ion)
SALTS = frozenset("""
hydrochloride hcl dihydrochloride hydrobromide hbr sodium disodium potassium dipotassium calcium magnesium
zinc lithium aluminum aluminium ammonium sulfate sulphate bisulfate phosphate diphosphate acetate
diacetate maleate dimaleate mesylate mesilate dimesylate besylate besilate tartrate bitartrate citrate
succinate fumarate hemifumarate bromide chloride iodide nitrate lactate gluconate dihydrate monohydrate
trihydrate hemihydrate sesquihydrate anhydrous hyclate pamoate valerate propionate dipropionate furoate
butyrate hexanoate decanoate enanthate cypionate undecanoate palmitate stearate tosylate napsylate
oxalate carbonate bicarbonate hydroxide oxide trometamol tromethamine meglumine benzoate salicylate
embonate edisylate esylate isethionate malate mandelate medoxomil axetil pivoxil proxetil cilexetil
mofetil etabonate sodium.
""".split())
# dose, route and form words that can trail a drug name in text ("prednisone 40 mg orally")
_TRAIL = re.compile(r"\s+(?:\d[\d.,]*\s*(?:mg|g|mcg|µg|ug|ml|iu|units?|%)\b.*|(?:tablets?|capsules?|injection|"
                    r"oral(?:ly)?|i\.?v\.?|intravenous(?:ly)?|topical|cream|ointment|solution|suspension|"
                    r"therapy|treatment)\b.*)$", re.IGNORECASE)


# words before a biological's name that do not change the substance
_QUALIFIERS = frozenset({"recombinant", "human", "rh", "r"})
_GREEK = {"α": "alfa", "alpha": "alfa", "β": "beta", "γ": "gamma", "gama": "gamma", "κ": "kappa"}


def normal(text: str) -> str:
    """The lookup form of a name: lower case, hyphens and runs of spaces as one space, Greek letters
    spelt as INN spells them (interferon alpha -> interferon alfa), trailing dose/route/form words
    and punctuation dropped."""
    t = _TRAIL.sub("", text.strip())
    t = re.sub(r"[\s\-‐–/]+", " ", t.lower())
    t = re.sub(r"(?<=[a-z])(?=(?:alpha|beta|gamma)\b)", " ", t)  # "ifnalpha" -> "ifn alpha"
    t = " ".join(_GREEK.get(w, w) for w in t.split())
    return t.strip(" .,;:()[]'\"")


def reworded(key: str) -> str:
    """A mention's normal form as an INN would word it: "recombinant human interferon beta" ->
    "interferon beta", "alfa interferon" -> "interferon alfa", "pegylated interferon" ->
    "peginterferon". Tried only when the mention as written finds nothing."""
    ws = key.split()
    while len(ws) > 1 and ws[0] in _QUALIFIERS:
        ws = ws[1:]
    if len(ws) == 2 and ws[0] in ("alfa", "beta", "gamma") and ws[1].isalpha():
        ws = ws[::-1]
    if len(ws) >= 2 and ws[0] == "pegylated":
        ws = ["peg" + ws[1]] + ws[2:]
    return " ".join(ws)


def compact(key: str) -> str:
    """A normal form without spaces: "fk 506" and "fk506", "ara c" and "arac" meet here."""
    return key.replace(" ", "")


def fold_salts(name: str) -> str:
    """A normal-form name without its salt, ester or hydrate words ("atorvastatin calcium trihydrate"
    -> "atorvastatin"); a name that is only such words is kept."""
    words = name.split()
    kept = [w for w in words if w not in SALTS]
    return " ".join(kept) if kept else name


@dataclass(frozen=True)
class Substance:
    name: str
    drugbank_id: str | None = None
    unii: str | None = None

    def to_json(self) -> dict:
        return {"substance": self.name, "drugbank_id": self.drugbank_id, "unii": self.unii}


@dataclass(frozen=True)
class Normalised:
    """What a mention normalised to (``substances``: one, or several for a combination brand),
    and how (exact, salt, brand, user)."""

    mention: str
    substances: tuple[Substance, ...]
    how: str

    @property
    def substance(self) -> Substance | None:
        return self.substances[0] if self.substances else None


class DrugNormaliser:
    """``DrugNormaliser.from_folder("../shared/data/drugs").normalise("Lipitor")`` -> atorvastatin."""

    def __init__(self) -> None:
        self.names: dict[str, Substance] = {}  # normal form -> substance
        self.compact: dict[str, Substance] = {}  # normal form without spaces -> substance
        self.heads: dict[str, set[str]] = {}  # the first word of a multi-word name -> those names
        self._stems: list[str] | None = None  # one-word names, for the INN-stem families ("-statin")
        self.brands: dict[str, tuple[str, ...]] = {}  # normal form of a brand -> ingredient normal forms
        # the first word of multi-word brands ("adriamycin" of "adriamycin pfs") whose brands all share
        # one ingredient list; None where they differ
        self.brand_heads: dict[str, tuple[str, ...] | None] = {}
        self.user: dict[str, Substance] = {}
        self.classes: dict[str, Substance] = _classes()  # normal form -> the class (resources/drugs/classes.txt)

    @classmethod
    def from_folder(cls, folder: str | Path, products: Iterable[str] = ()) -> "DrugNormaliser":
        """From a folder holding drugbank_vocabulary.csv and (optional) fda_products.txt; ``products``
        are the user's own lines ``name; synonym; ...`` (the first is the substance name)."""
        folder = Path(folder)
        vocab = folder / "drugbank_vocabulary.csv"
        if not vocab.exists():
            raise InputError(f"{vocab}: no such file (the DrugBank open vocabulary)")
        n = cls()
        n.load_drugbank(vocab)
        if (folder / "fda_products.txt").exists():
            n.load_fda(folder / "fda_products.txt")
        n.add_products(products)
        return n

    def load_drugbank(self, path: Path) -> None:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            for col in ("DrugBank ID", "Common name", "UNII", "Synonyms"):
                if col not in (reader.fieldnames or []):
                    raise InputError(f"{path}: no column {col!r} (the DrugBank open vocabulary's header)")
            for line, row in enumerate(reader, 2):
                name = row["Common name"].strip()
                if not name:
                    raise InputError(f"{path}:{line}: a drug without a name")
                sub = Substance(name, row["DrugBank ID"].strip() or None, row["UNII"].strip() or None)
                for syn in [name] + row["Synonyms"].split("|"):
                    key = normal(syn)
                    if key:
                        self.names.setdefault(key, sub)  # the first drug to claim a name keeps it
                        self.compact.setdefault(compact(key), sub)
                key = normal(name)
                if " " in key:
                    self.heads.setdefault(key.split()[0], set()).add(name)

    def load_fda(self, path: Path) -> None:
        with open(path, encoding="latin-1", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            for col in ("DrugName", "ActiveIngredient"):
                if col not in (reader.fieldnames or []):
                    raise InputError(f"{path}: no column {col!r} (the Drugs@FDA Products table's header)")
            for row in reader:
                brand = normal(row["DrugName"] or "")
                parts = tuple(normal(p) for p in re.split(r";|,\s(?=[A-Z])", row["ActiveIngredient"] or ""))
                parts = tuple(p for p in parts if p)
                if brand and parts:
                    self.brands.setdefault(brand, parts)
                    head = brand.split()[0]
                    if " " in brand and len(head) >= 5 and head.isalpha():
                        seen = self.brand_heads.setdefault(head, parts)
                        if seen is not None and seen != parts:
                            self.brand_heads[head] = None

    def add_products(self, lines: Iterable[str]) -> None:
        """The user's own products, ``name; synonym; ...``: they override the vocabularies."""
        for line in lines:
            parts = [p.strip() for p in re.split(r"[;\t|]", line.split("#", 1)[0]) if p.strip()]
            if not parts:
                continue
            base = self._lookup(normal(parts[0]))
            sub = base.substance if base else Substance(parts[0])
            for p in parts:
                self.user[normal(p)] = sub

    def _lookup(self, key: str) -> Normalised | None:
        if key in self.user:
            return Normalised(key, (self.user[key],), "user")
        if key in self.names:
            return Normalised(key, (self.names[key],), "exact")
        folded = fold_salts(key)
        if folded != key and folded in self.names:
            return Normalised(key, (self.names[folded],), "salt")
        for k in (key, folded):
            parts = self.brands.get(k) or (self.brand_heads.get(k) if k not in self.names else None)
            if parts:
                subs = tuple(self.names.get(p) or self.names.get(fold_salts(p)) or Substance(fold_salts(p))
                             for p in parts)
                return Normalised(key, subs, "brand")
        if key in self.classes:
            return Normalised(key, (self.classes[key],), "class")
        if compact(folded) in self.compact:
            return Normalised(key, (self.compact[compact(folded)],), "spelling")
        # a family named by its head word ("insulin", "interferon alfa"): several substances share it
        if key == folded and len(key) >= 5 and key.replace(" ", "").isalpha():
            members = self.heads.get(key, set()) if " " not in key else {
                n for n in self.heads.get(key.split()[0], set()) if normal(n).startswith(key + " ")}
            if len(members) >= 2:
                return Normalised(key, (Substance(key),), "family")
            # a class named by its INN stem: "statin" ends atorvastatin, simvastatin... (3 or more)
            stem = key[:-1] if key.endswith("s") else key
            if " " not in stem and sum(1 for w in self._one_word() if w.endswith(stem) and w != stem) >= 3:
                return Normalised(key, (Substance(stem),), "family")
        # a combination written with a hyphen, a slash or "and": every part a substance
        parts = [p for p in re.split(r"\s(?:and|plus|with)\s|\s", key) if p]
        if 1 < len(parts) <= 4 and key == folded:
            hits = [self._lookup(p) for p in parts]
            if all(h is not None and h.how in ("exact", "salt", "spelling") for h in hits):
                return Normalised(key, tuple(h.substance for h in hits), "combination")
        # worded otherwise ("alfa interferon"), an anion named for its acid ("calcium hopantenate" -> hopantenic acid), a plural ("cephalosporins")
        for alt, how in ((reworded(key), None),
                         (re.sub(r"ate$", "ic acid", folded) if folded.endswith("ate") and " " not in folded else None,
                          "salt"),
                         (key[:-1] if key.endswith("s") and len(key) > 5 and not key.endswith("ss") else None, None)):
            if alt and alt != key:
                hit = self._lookup(alt)
                if hit is not None:
                    return Normalised(key, hit.substances, how or hit.how)
        return None

    def _one_word(self) -> list[str]:
        if self._stems is None:
            self._stems = [k for k in self.names if " " not in k and k.isalpha()]
        return self._stems

    def normalise(self, mention: str, abbreviations: dict[str, str] | None = None) -> Normalised:
        """The substance(s) a drug mention names; ``how == "none"`` (no substance) when none is found.
        ``abbreviations`` (short form -> long form, ``abbreviations_of`` the document) resolve a
        short form the document defined ("PTU" after "propylthiouracil (PTU)")."""
        hit = self._lookup(normal(mention))
        if hit is None and abbreviations and mention.strip() in abbreviations:
            hit = self._lookup(normal(abbreviations[mention.strip()]))
            if hit is not None:
                hit = Normalised(mention, hit.substances, "abbreviation")
        return Normalised(mention, hit.substances, hit.how) if hit else Normalised(mention, (), "none")

    def vocabulary(self) -> dict[str, set[str]]:
        """Substance name -> every normal-form name of it: DrugBank names and synonyms, the brands
        whose only ingredient it is, the user's names (what a matcher over text looks for)."""
        out: dict[str, set[str]] = {}
        for table in (self.names, self.user):
            for key, sub in table.items():
                out.setdefault(sub.name, set()).add(key)
        for brand, parts in self.brands.items():
            if len(parts) == 1:
                sub = self.names.get(parts[0]) or self.names.get(fold_salts(parts[0]))
                out.setdefault(sub.name if sub else parts[0], set()).add(brand)
        return out

    def synonyms(self, substance: str) -> set[str]:
        """Every normal-form name (synonyms, brands whose only ingredient it is, user names) of a substance."""
        hit = self._lookup(normal(substance))
        if hit is None:
            return {normal(substance)}
        want = hit.substance
        out = {k for k, s in self.names.items() if s == want} | {k for k, s in self.user.items() if s == want}
        target = normal(want.name)
        out |= {b for b, parts in self.brands.items() if len(parts) == 1 and parts[0] == target}
        return out


@lru_cache(maxsize=1)
def _classes() -> dict[str, Substance]:
    """The drug classes the package ships (resources/drugs/classes.txt): normal form -> the class."""
    from importlib import resources

    text = resources.files("ade_distill").joinpath("resources/drugs/classes.txt").read_text(encoding="utf-8")
    out: dict[str, Substance] = {}
    for line in text.splitlines():
        names = [p.strip() for p in line.split("#", 1)[0].split(";") if p.strip()]
        if names:
            cls = Substance(names[0])
            for n in names:
                out.setdefault(normal(n), cls)
    return out


def abbreviations_of(text: str) -> dict[str, str]:
    """Short form -> long form of every abbreviation a document defines ("propylthiouracil (PTU)"),
    by the Schwartz-Hearst algorithm (the ``abbreviations`` package)."""
    from abbreviations import schwartz_hearst

    return schwartz_hearst.extract_abbreviation_definition_pairs(doc_text=text)
