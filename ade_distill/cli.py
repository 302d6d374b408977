"""`ade-distill`: parse the arguments (cli_args), call one workflow, print its result.

Every expected failure (an ``AdeDistillError`` or an unreadable / unwritable path) is printed as
one line naming the file and record, exit status 2; work left with failures exits 1; Ctrl-C 130;
SIGTERM 143 (outputs are complete or absent in every case).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

from . import __version__, workflows
from .cli_args import build_parser
from .core.logs import setup_logging
from .post.chain import PostConfig
from .core.errors import AdeDistillError, InputError
from .workflows.common import one_or_many


class CliError(AdeDistillError):
    """A user-facing error: printed as one line, exit status 2."""


def _show(result) -> None:
    for line in result.lines():
        print(line)


def _show_skipping(result) -> None:
    """The result, and how many bad records were skipped (each was named in a warning above)."""
    _show(result)
    if result.problems:
        print(f"{len(result.problems):,} bad record(s) skipped (each named in a warning above)", file=sys.stderr)


def _pairs(specs: Sequence[str], flag: str = "--pred") -> dict[str, Path]:
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CliError(f"{flag} {spec!r}: expected NAME=FILE")
        if name in out:
            raise CliError(f"{flag}: system name {name!r} given twice")
        out[name] = Path(path)
    return out


def _command() -> str:
    return "ade-distill " + shlex.join(sys.argv[1:])


# ---------------------------------------------------------------- ingest

def cmd_ingest_ade_corpus(a) -> None:
    r = workflows.ingest_ade_corpus(a.source, a.out, negatives=not a.no_negatives, doses=a.with_doses, strict=a.strict)
    _show_skipping(r)


def cmd_ingest_ade_splits(a) -> None:
    r = workflows.ingest_ade_splits(a.source, a.out, fold=None if a.fold == "full" else int(a.fold), part=a.part,
                                    corpus=a.corpus, strict=a.strict)
    _show_skipping(r)


def cmd_ingest_pubmed(a) -> None:
    key = os.environ.get(a.api_key_env) if a.api_key_env else None
    r = workflows.ingest_pubmed(a.input, a.out, query=a.query, max_records=a.max, api_key=key, email=a.email,
                                eutils_url=a.eutils_url, documents_out=a.documents_out, strict=a.strict)
    _show_skipping(r)


def cmd_ingest_text(a) -> None:
    r = workflows.ingest_text(one_or_many(a.input), a.out, id_column=a.id_column, text_column=a.text_column,
                              title_column=a.title_column, documents_out=a.documents_out, strict=a.strict)
    _show_skipping(r)


def cmd_validate(a) -> None:
    r = workflows.validate(a.files)
    _show(r)
    for msg in r.problems:
        print(f"invalid: {msg}", file=sys.stderr)
    if r.problems:
        raise CliError(f"{len(r.problems)} invalid record(s)")


# ---------------------------------------------------------------- teacher

def cmd_label(a) -> None:
    r = workflows.label(one_or_many(a.input), a.out, a.teacher, failures=a.failures, limit=a.limit,
                        checkpoint_every=a.checkpoint_every, cache=a.cache)
    _show(r)
    if r.failed:
        print(r.failure_line(), file=sys.stderr)
        raise SystemExit(1)


def cmd_synthesize(a) -> None:
    from .workflows.synthesize import synthesize

    r = synthesize(one_or_many(a.corpus), a.out, a.teacher, n=a.n, max_tries=a.max_tries, drugs=a.drugs,
                   effects=a.effects, seed=a.seed, near_duplicate=a.near_duplicate, temperature=a.temperature,
                   checkpoint_every=a.checkpoint_every, exclude=one_or_many(a.exclude) if a.exclude else (),
                   allow_gold=a.allow_gold, answer=a.answer, cache=a.cache)
    _show(r)
    if r.stats.failed:
        raise SystemExit(1)


def cmd_teacher_serve(a) -> None:
    from .workflows.teacher import serve_teacher

    serve_teacher(a.model, n_ctx=a.n_ctx, threads=a.threads, port=a.port, server=a.server, parallel=a.parallel,
                  ready=lambda line: print(line, flush=True))
    raise CliError("the server exited")


def cmd_teacher_rescore(a) -> None:
    c = workflows.rescore(a.input, a.out, a.teacher, cache=a.cache)
    print(f"rescored {c['scored']:,} sentences in {c['seconds']:.0f} s -> {a.out}"
          + (f"; {c['failed']:,} failed (see {str(a.out).removesuffix('.jsonl')}.failures.jsonl)" if c["failed"] else ""))
    if c["failed"]:
        raise SystemExit(1)


def cmd_teacher_batch(a) -> None:
    from .workflows import teacher as wt

    if a.action == "batch-export":
        st = wt.batch_export(a.input, a.out, a.teacher)
        print(f"wrote {st.calls:,} Batch API requests to {a.out} (upload with the OpenAI Batch API); PHI guard "
              f"{st.phi_policy}: {st.phi_redacted:,} redacted, {st.phi_blocked:,} kept back, identifiers by type "
              f"{dict(st.phi_found)}")
        return
    r = wt.import_labels(a.input, a.results, a.out, a.teacher, kind="batch" if a.action == "batch-import" else "replay",
                         name=getattr(a, "name", "replay"))
    _show(r)
    if r.failed:
        raise SystemExit(1)


def cmd_labels(a) -> None:
    if a.action == "pack":
        print(f"packed {workflows.pack_labels(a.input, a.out):,} labelled sentences (no text) -> {a.out}")
    elif a.action == "clean":
        _show(workflows.clean_labels(a.labels, a.out, config=a.config, folds=a.folds, action=a.clean_action,
                                     model=a.model, epochs=a.epochs))
    else:
        print(f"unpacked {workflows.unpack_labels(a.input, a.sentences, a.out):,} labelled sentences -> {a.out}")


# ---------------------------------------------------------------- student

def cmd_train(a) -> None:
    _show(workflows.train(one_or_many(a.train), a.out, a.config, dev=a.dev, resume=a.resume, name=a.name, model=a.model,
                          epochs=a.epochs, start_from=a.start_from))


def cmd_federate(a) -> None:
    from .workflows.federate import federate

    _show(federate(a.site, a.out, a.config, rounds=a.rounds, local_epochs=a.local_epochs, strategy=a.strategy, mu=a.mu,
                   min_sites=a.min_sites, model=a.model))


def cmd_compress(a) -> None:
    info = workflows.compress(a.teacher, a.out, method=a.method, sentences=a.train, config=a.config, share=a.share,
                              unlabeled=a.unlabeled, layers=a.layers, hidden=a.hidden, epochs=a.epochs)
    print(f"{a.method}: {info} -> {a.out}")


def _load(a) -> dict:
    return {"quantize": a.quantize, "batch_size": a.batch_size, "threads": a.threads, "runtime": a.runtime}


def cmd_predict(a) -> None:
    _show(workflows.predict(a.model, one_or_many(a.input), a.out, **_load(a)))


def _post(a) -> PostConfig:
    return PostConfig(drugs=a.drug_vocab, products=a.products, meddra=a.meddra, meddra_threshold=a.meddra_threshold,
                      meddra_encoder=a.meddra_encoder, assertion=a.assertion)


def cmd_extract(a) -> None:
    r = workflows.extract(a.model, one_or_many(a.input), a.out, format=a.format, id_column=a.id_column, text_column=a.text_column,
                          strict=a.strict, post=_post(a), drugs=_drugs(a), prefilter=a.prefilter, gate=a.gate,
                          **_load(a))
    _show_skipping(r)


def cmd_review(a) -> None:
    if a.action == "export":
        _show(workflows.review_export(a.model, a.input, a.out, n=a.n, strategy=a.by, teacher=a.teacher,
                                      exclude=a.exclude, seed=a.seed, **_load(a)))
    elif a.action == "import":
        _show(workflows.review_import(a.input, a.out, append=not a.replace))
    elif a.action == "push":
        _show(workflows.review_push(a.tasks, a.url, key_env=a.key_env, project=a.project, title=a.title))
    elif a.action == "pull":
        _show(workflows.review_pull(a.url, a.project, a.out, key_env=a.key_env, append=not a.replace))
    else:
        _show(workflows.review_retrain(a.labels, a.reviewed, a.out, a.config, model=a.model, epochs=a.epochs))


def cmd_export_onnx(a) -> None:
    for kind, path in workflows.export_onnx(a.model, int8=not a.no_int8).items():
        print(f"{kind}: {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _drugs(a):
    """--drugs: one file, or names."""
    return a.drugs[0] if a.drugs and len(a.drugs) == 1 and Path(a.drugs[0]).is_file() else a.drugs


def cmd_gate(a) -> None:
    from .workflows.screen import train_gate

    _show(train_gate(a.labels, a.out, recall=a.recall, validation_share=a.validation_share))


def cmd_meddra_tune(a) -> None:
    from .post.meddra_tune import tune_from_release

    out = tune_from_release(a.meddra, a.out, coded=a.coded, base=a.base, epochs=a.epochs)
    print(f"tuned MedDRA matcher -> {out} (use --meddra-encoder {out})")


def cmd_screen(a) -> None:
    from .workflows.screen import screen

    r = screen(a.model, a.input, a.out, drugs=_drugs(a), query=a.query, mindate=a.mindate, maxdate=a.maxdate,
               max_records=a.max_records, engine=a.engine, ray_address=a.ray_address, workers=a.workers,
               runtime=a.runtime, quantize=None if a.quantize == "none" else a.quantize,
               threads=a.threads, excerpts=not a.no_excerpts, api_key=os.environ.get(a.api_key_env) if a.api_key_env else None,
               email=a.email, command="ade-distill " + " ".join(shlex.quote(x) for x in sys.argv[1:]), post=_post(a),
               prefilter=a.prefilter, gate=a.gate)
    _show(r)


def cmd_serve(a) -> None:
    from .apps.service import ServiceLimits, serve

    token = None
    if a.token_env:
        token = os.environ.get(a.token_env)
        if not token:
            raise InputError(f"--token-env {a.token_env}: that environment variable is not set")
    limits = ServiceLimits(max_body_bytes=a.max_body_bytes, max_documents=a.max_documents, max_chars=a.max_chars,
                           max_batch_documents=a.max_batch, model_batch=a.model_batch, batch_wait_ms=a.batch_wait_ms,
                           max_queued_documents=a.max_queued)
    print(f"serving {a.model} on http://{a.host}:{a.port} (API docs: /docs)"
          + ("; API token required" if token else ""), flush=True)
    serve(a.model, host=a.host, port=a.port, token=token, limits=limits, metrics=a.metrics,
          quantize=None if a.quantize == "none" else a.quantize, threads=a.threads, runtime=a.runtime,
          log_level="info" if a.verbose else "warning", post=_post(a))


# ---------------------------------------------------------------- evaluate, report, rank, run

def cmd_evaluate(a) -> None:
    _show(workflows.evaluate_files(a.gold, _pairs(a.pred), a.out, allow_missing=a.allow_missing,
                                   bootstrap=a.bootstrap, seed=a.seed))


def cmd_folds(a) -> None:
    from .workflows.evaluate import summarise_folds

    per_fold = _pairs(a.fold, "--fold")
    if not all(k.isdigit() for k in per_fold):
        raise CliError(f"--fold {a.fold}: expected K=METRICS.json")
    _show(summarise_folds({int(k): p for k, p in per_fold.items()}, a.out, reference=a.reference, micro=a.micro))


def cmd_report(a) -> None:
    _show(workflows.report(a.metrics, a.out, gold=a.gold, predictions=_pairs(a.pred), excerpts=not a.no_excerpts,
                           title=a.title, command=_command() if a.show_command else None))


def cmd_rank(a) -> None:
    from .workflows.evaluate import rank_models

    if not a.gold and not a.run:
        raise CliError("rank: give --gold (with --model/--pred) or --run (a pipeline run folder)")
    students = {name: (str(d).removesuffix(":int8"), "int8" if str(d).endswith(":int8") else None)
                for name, d in _pairs(a.model, "--model").items()}
    paths = rank_models(a.gold or a.run / "ingest" / "test.jsonl", a.out, students=students,
                        predictions=_pairs(a.pred), run=a.run, threads=a.threads, bootstrap=a.bootstrap,
                        core_hour_usd=a.core_hour_usd, command=_command())
    print(paths["md"].read_text())


def cmd_run(a) -> None:
    from .pipeline import Pipeline, StageFailed

    try:
        manifest = Pipeline(a.file, run_dir=a.run_dir).run(start=a.start, only=a.only, force=a.force)
    except StageFailed as exc:
        print(f"ade-distill: error: {exc}", file=sys.stderr)
        print(f"(earlier stages' outputs are kept; the manifest marks the stage failed: "
              f"{a.run_dir or 'runs/<name>'}/manifest.json)", file=sys.stderr)
        raise SystemExit(1) from exc
    partial = [n for n, e in manifest["stages"].items() if e.get("status") == "partial"]
    if partial:
        print(f"finished with failures in: {', '.join(partial)} (rerun to retry them)", file=sys.stderr)
        raise SystemExit(1)


def cmd_demo(a) -> None:
    """The main job on the embedded sample: the quickstart pipeline."""
    from .pipeline import REPO_DIR

    path = REPO_DIR / "pipelines" / "quickstart.yaml"
    if not path.exists():
        raise CliError(f"{path}: not found (the demo runs from a source checkout: git clone, then make demo)")
    from .core.paths import shown

    print(f"ade-distill {__version__} demo: {shown(path)}")
    a.file, a.start, a.only, a.force = path, None, None, False
    cmd_run(a)


# ---------------------------------------------------------------- entry point

class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so every open output is cleaned up
    (atomic writes remove their temporary file, a pipeline marks its stage interrupted)."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    args: argparse.Namespace = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        globals()[f"cmd_{args.func}"](args)
    except SystemExit as exc:
        return int(exc.code or 0)
    except (AdeDistillError, OSError) as exc:  # expected failures and bad paths: one line naming file and record
        print(f"ade-distill: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("ade-distill: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("ade-distill: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


def run() -> None:
    """The console script: main(), and after Ctrl-C or SIGTERM an immediate exit (every output is
    already complete or removed) instead of waiting for a worker thread's request still in flight."""
    code = main()
    if code in (130, 143):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
