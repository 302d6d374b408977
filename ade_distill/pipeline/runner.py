"""`ade-distill run pipelines/<name>.yaml`: ingest -> label -> train -> evaluate -> report -> extract.

The runner only wires stages together: it reads the pipeline file into settings, lays out each
stage's inputs and outputs, decides which stages are current (``manifest``), and calls the
workflow that does the stage's work (the same functions the command line calls). Each stage
writes into its own folder under the run directory and is recorded in ``manifest.json``
(settings, input and output hashes, code version, timings, tokens, cost, status). A stage is
skipped when its fingerprint matches a finished entry whose outputs are still there unchanged,
so a rerun does nothing, a deleted stage folder reruns that stage and whatever its outputs feed,
and an interrupted run resumes at the stage that stopped: inside labelling at the next
unlabelled sentence, inside training at the last finished epoch. A stage that runs for any other
reason (new settings, inputs or code, or --force) starts from an empty folder, so no checkpoint
of another configuration is resumed.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from pathlib import Path

from .. import workflows
from ..workflows.evaluate import aggregate_folds, evaluate_stage, teacher_cost
from ..workflows.ingest import ingest_inputs
from ..workflows.student import extract_stage, train_stage
from ..workflows.teacher import label_file_name, label_stage, teacher_name
from ..core.paths import shown
from .manifest import Manifest, Stage, StageFailed, code_version, git_commit, sha256_path
from .settings import default_shared_data, load_pipeline, resolve_path

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, path: str | Path, *, run_dir: str | Path | None = None, progress: bool = True,
                 _fold: int | None = None, _parent: "Pipeline | None" = None) -> None:
        self.path = Path(path)
        if _parent is None:
            self.cfg, self.teachers = load_pipeline(self.path)
        else:  # one fold of a k-fold pipeline: the parent's settings with inputs.fold = k
            c = _parent.cfg
            self.cfg = c.model_copy(update={
                "inputs": c.inputs.model_copy(update={"fold": _fold, "folds": None}),
                "report": c.report.model_copy(update={"title": f"{c.report.title}: fold {_fold}", "publish": None})})
            self.teachers = _parent.teachers
        self.run_dir = Path(run_dir or self.cfg.run_dir or Path("runs") / self.cfg.name)
        # k-fold: one sub-pipeline per fold, each with its own folder and manifest (so each fold's
        # stages are skipped or resumed on their own); this pipeline's only stage aggregates them
        self.fold_runs = {k: Pipeline(path, run_dir=self.run_dir / f"fold-{k}", progress=progress, _fold=k, _parent=self)
                          for k in self.cfg.inputs.fold_list()}
        self.progress = progress
        # what each stage did, one line each: printed for a person at a terminal, logged otherwise
        self.say = (lambda msg: print(msg, flush=True)) if progress else log.info
        self.manifest = Manifest(self.run_dir / "manifest.json")
        self.code = code_version()
        self.commit = git_commit()  # at the start of this invocation; each stage records its own too
        from .stages import stage_graph

        self.stages = stage_graph(self)

    @property
    def teacher_cfg(self):
        return self.teachers.get("teacher")

    @property
    def teacher_name(self) -> str:
        return teacher_name(self.teacher_cfg)

    def run_path(self, *parts: str) -> Path:
        """A path inside the run folder."""
        return self.run_dir.joinpath(*parts)

    def resolve(self, p: str) -> Path:
        """A path written in the pipeline file (relative to the repository or the file's folder)."""
        return resolve_path(self.path, p)

    def _save(self) -> None:
        d = self.cfg.model_dump(mode="json")
        if self.teachers:  # names of key variables only, never a key
            d["teacher_resolved"] = self.teacher_cfg.model_dump(mode="json")
            d["views_resolved"] = {n: t.model_dump(mode="json") for n, t in self.teachers.items() if n != "teacher"}
        self.manifest.save(pipeline=str(self.path), name=self.cfg.name, config=d, code_version=self.code,
                           git_commit=self.commit)

    def select(self, start: str | None = None, only: str | None = None) -> list[Stage]:
        names = [s.name for s in self.stages]

        def find(n: str) -> int:
            hits = [i for i, s in enumerate(names) if s == n or s.startswith(n + "-")]
            if not hits:
                raise StageFailed(f"no stage {n!r} in {self.path} (stages: {', '.join(names)})")
            return hits[0]

        if only:
            i = find(only)
            return [s for s in self.stages if s.name == names[i] or (only == "train" and s.name.startswith("train-"))]
        return self.stages[find(start):] if start else list(self.stages)

    def run(self, *, start: str | None = None, only: str | None = None, force: bool = False) -> dict:
        if not self.fold_runs:
            return self._run_stages(start=start, only=only, force=force)
        # each fold's pipeline in turn (each skips what it has finished and resumes what it had
        # not), then the aggregate stage; only/start name a fold stage or aggregate
        if "aggregate" not in (start, only):
            for k, f in self.fold_runs.items():
                self.say(f"== fold {k} ({len(self.fold_runs)} fold(s) in all)")
                f.run(start=start, only=only, force=force)
            if only:
                return self.manifest.data
        self.manifest.data["folds"] = {str(k): str(f.manifest.path) for k, f in self.fold_runs.items()}
        return self._run_stages(start=None, only="aggregate" if only else None, force=force or bool(start or only))

    def _run_stages(self, *, start: str | None = None, only: str | None = None, force: bool = False) -> dict:
        chosen = self.select(start, only)
        forced = {s.name for s in chosen} if (force or start or only) else set()
        self.say(f"pipeline {self.cfg.name}: {len(chosen)} stage(s) -> {self.run_dir}")
        self._save()
        for stage in chosen:
            self._run_stage(stage, stage.name in forced)
        report = self.run_path("report", "report.html")
        if report.exists():
            self.say(f"report: {report}")
        return self.manifest.data

    def _run_stage(self, stage: Stage, forced: bool) -> None:
        fp, in_hashes = self.manifest.fingerprint(stage)
        if not forced and self.manifest.is_current(stage, fp):
            self.say(f"[{stage.name}] up to date, skipped ({self.manifest.stages[stage.name].get('line', '')})")
            return
        prev = self.manifest.stages.get(stage.name) or {}
        resumable = (not forced and prev.get("fingerprint") == fp
                     and prev.get("status") in ("running", "interrupted", "failed"))
        if not resumable and stage.folder.exists():
            # other settings, inputs or code (or --force): a checkpoint there belongs to another run
            shutil.rmtree(stage.folder)
        entry = {"status": "running", "fingerprint": fp, "code_version": code_version(stage.name, stage.code),
                 "git_commit": self.commit, "inputs": in_hashes, "settings": stage.settings,
                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.manifest.stages[stage.name] = entry
        self._save()
        stage.folder.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        try:
            summary = stage.run(stage) or {}
        except KeyboardInterrupt:
            entry.update(status="interrupted", seconds=round(time.monotonic() - t0, 1))
            self._save()
            print(f"\n[{stage.name}] interrupted; run the same command again to resume here", file=sys.stderr)
            raise
        except Exception as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}", seconds=round(time.monotonic() - t0, 1))
            self._save()
            raise StageFailed(f"stage {stage.name} failed: {exc}") from exc
        missing = [str(p) for p in stage.outputs if not p.exists()]
        if missing:
            entry.update(status="failed", error=f"outputs not written: {missing}")
            self._save()
            raise StageFailed(f"stage {stage.name} failed: it did not write {', '.join(missing)}")
        line = summary.pop("line", "")
        entry.update(status=summary.pop("status", "done"), seconds=round(time.monotonic() - t0, 1),
                     outputs={shown(p): sha256_path(p) for p in stage.outputs}, summary=summary, line=line)
        self._save()
        self.say(f"[{stage.name}] {line} ({entry['seconds']:.0f} s)")

    # ---------------------------------------------------------------- the stages: each calls one workflow

    def splits_dir(self) -> Path:
        src = self.cfg.inputs.source
        return self.resolve(src) if src else default_shared_data() / "ade_splits"

    def run_ingest(self, stage: Stage) -> dict:
        return ingest_inputs(self.cfg.inputs, stage.folder, resolve=self.resolve, splits_dir=self.splits_dir(),
                             corpus_dir=self.splits_dir().parent / "ade_corpus_v2")

    def run_label(self, stage: Stage) -> dict:
        from .stages import label_parts, label_seeds

        from ..core.schema import read_sentences, write_jsonl
        from ..workflows.student import gold_budget

        teachers = dict(self.teachers)
        for v in self.cfg.label.views:
            if v.shots_gold_k:  # the k-shot teacher: its shots are the first k gold train sentences
                shots = stage.folder / f"shots.gold-{v.shots_gold_k}.jsonl"
                gold = list(read_sentences(self.run_path("ingest", "train.jsonl")))
                write_jsonl(shots, gold_budget(gold, v.shots_gold_k, self.cfg.gold_seed))
                tc = teachers[v.name]
                teachers[v.name] = tc.model_copy(update={"prompt": tc.prompt.model_copy(
                    update={"shots": str(shots), "n_shots": None, "retrieve": tc.prompt.retrieve or 4})})
        label = self.cfg.label
        if label.repair.drug_vocab:  # a path in the pipeline file, as every other
            label = label.model_copy(update={"repair": label.repair.model_copy(
                update={"drug_vocab": str(self.resolve(label.repair.drug_vocab))})})
        return label_stage(self.run_path("ingest"), stage.folder, label, teachers, label_seeds(self),
                           label_parts(self), progress=self.progress,
                           view_parts={v.name: v.parts for v in self.cfg.label.views})

    def run_synthesize(self, stage: Stage) -> dict:
        from ..workflows.synthesize import synthesize

        sc = self.cfg.synthesize
        if sc.pool:
            from ..core.config import ConfigError
            from ..core.schema import read_sentences, write_jsonl

            pool = list(read_sentences(self.resolve(sc.pool)))[:sc.n]
            if len(pool) < sc.n or not all(s.source.startswith("synthetic:") for s in pool):
                raise ConfigError(f"synthesize.pool {sc.pool}: needs {sc.n} synthetic sentences, holds "
                                  f"{sum(s.source.startswith('synthetic:') for s in pool)}")
            write_jsonl(stage.folder / "synthetic.jsonl", pool)
            return {"kept": len(pool), "pool": sc.pool, "line": f"synthetic sentences: the first {len(pool):,} of {sc.pool}"}
        r = synthesize(self.run_path("label", "train.teacher.jsonl"), stage.folder / "synthetic.jsonl", self.teacher_cfg,
                       n=sc.n, max_tries=sc.max_tries, drugs=[self.resolve(x) for x in sc.drugs],
                       effects=[self.resolve(x) for x in sc.effects], seed=sc.seed, near_duplicate=sc.near_duplicate,
                       temperature=sc.temperature, answer=sc.answer, progress=self.progress)
        return {"kept": r.stats.total_kept, "rejected": dict(r.stats.rejected), "teacher_hours": round(r.teacher_hours, 3),
                "diversity": {k: v for k, v in r.diversity.items() if k != "top_openings"}, "line": r.lines()[0]}

    def run_train(self, stage: Stage) -> dict:
        name = stage.name.removeprefix("train-")
        spec = self.cfg.students[name]
        src = "ingest/train.jsonl" if spec.labels == "gold" else "label/train.teacher.jsonl"
        in_domain = "ingest/in_domain.jsonl" if spec.distill_from else "label/in_domain.teacher.jsonl"
        return train_stage(name, spec, stage.folder, self.run_path(src),
                           earlier={n: self.run_path(f"train-{n}", "model") for n in self.cfg.students},
                           unlabeled_file=self.run_path("ingest", "unlabeled.jsonl"),
                           in_domain_file=self.run_path(in_domain), progress=self.progress,
                           synthetic_file=self.run_path("synthesize", "synthetic.jsonl"),
                           gold_file=self.run_path("ingest", "train.jsonl"), gold_seed=self.cfg.gold_seed)

    def teacher_systems(self, *, cost: bool = False) -> dict[str, tuple[Path, dict]]:
        """Each scored teacher system: the teacher (as a user would call it), each other view, and
        the views aggregated, with its test labels and what the report says of it (``cost``: with
        the cost per 1,000 sentences its labels' token counts imply)."""
        from .stages import has_test

        if self.cfg.label is None or not self.cfg.label.label_test or not has_test(self):
            return {}
        out: dict[str, tuple[Path, dict]] = {}
        lab = self.manifest.stages.get("label", {}).get("summary", {})
        for view, tc in self.teachers.items():
            path = self.run_path("label", label_file_name("test", view, True))
            name = f"teacher ({self.teacher_name})" if view == "teacher" else f"teacher view {view}"
            made = ("the LLM's own labels on the test sentences: the line a distilled student must beat"
                    if view == "teacher" else f"the same sentences read by the {view} view ({teacher_name(tc)})")
            k = next((v.shots_gold_k for v in self.cfg.label.views if v.name == view), None)
            if k:
                made = (f"the {view} view ({teacher_name(tc)}) shown, for each sentence, the examples most like it out "
                        f"of {k} gold train sentences (kNN few-shot; the k-shot teacher of the hybrid)")
            info = {"made": made, "view": view}
            t = lab.get("test" if view == "teacher" else f"test.{view}", {})
            if t.get("calls") and t.get("seconds"):
                info["sentences_per_second"] = round(t["labelled"] / t["seconds"], 3)
            if cost and path.exists():
                info.update(teacher_cost(list(workflows.common.sentence_list(path)), tc, teacher_name(tc)))
            out[name] = (path, info)
        if len(self.teachers) > 1:
            out["teacher views aggregated"] = (self.run_path("label", "test.views.jsonl"), {
                "made": f"the {len(self.teachers)} views' test labels aggregated ({self.cfg.label.aggregate.rule})",
                "view": "aggregate"})
        return out

    def run_evaluate(self, stage: Stage) -> dict:
        students = {n: (self.run_path(f"train-{n}", "model"), s.how_made()) for n, s in self.cfg.students.items()}
        return evaluate_stage(self.run_path("ingest", "test.jsonl"), stage.folder,
                              teachers=self.teacher_systems(cost=True), students=students,
                              cfg=self.cfg.evaluate)

    def run_report(self, stage: Stage) -> dict:
        preds = {name: path for name, (path, _) in self.teacher_systems().items()}
        preds.update({f"student {n}": self.run_path("evaluate", "predictions", f"{n}.jsonl") for n in self.cfg.students})
        rc = self.cfg.report
        paths = workflows.report(self.run_path("evaluate", "metrics.json"), stage.folder,
                                 gold=self.run_path("ingest", "test.jsonl"), predictions=preds, excerpts=rc.excerpts,
                                 title=rc.title, command=f"ade-distill run {shown(self.path)}").files
        return {"files": {k: str(v) for k, v in paths.items()}, "line": f"-> {paths['html']}"}

    def run_extract(self, stage: Stage) -> dict:
        who = stage.settings["student"]
        r = extract_stage(self.run_path(f"train-{who}", "model"), self.run_path("ingest", "documents.sentences.jsonl"),
                          stage.folder, quantize=self.cfg.extract.quantize, formats=self.cfg.extract.formats,
                          post=self.cfg.extract.post)
        return {**r, "line": f"student {who}: {r['line']}"}

    def run_aggregate(self, stage: Stage) -> dict:
        from .stages import fold_systems, folds_preamble

        systems = fold_systems(self)
        folds = {k: {"gold": f.run_path("ingest", "test.jsonl"), "metrics": f.run_path("evaluate", "metrics.json"),
                     **{name: where(f) for name, (_, where) in systems.items()}} for k, f in self.fold_runs.items()}
        k_shot = {f"teacher-view-{v.name}" for v in self.cfg.label.views if v.shots_gold_k} if self.cfg.label else set()
        # the reference: the best zero-gold teacher view (a k-shot view has seen gold sentences)
        teachers = [n for n, (slug, _) in systems.items() if slug.startswith("teacher") and slug != "teacher-views"
                    and slug not in k_shot]
        command = f"ade-distill run {shown(self.path)}"
        pub = self.cfg.report.publish
        return aggregate_folds(folds, {n: slug for n, (slug, _) in systems.items()}, stage.folder,
                               evaluate_cfg=self.cfg.evaluate, report_cfg=self.cfg.report,
                               reference=teachers[0] if len(teachers) == 1 else (teachers or None),
                               preamble=lambda n: folds_preamble(self, command, n),
                               command=command, publish=Path(pub) if pub else None)


def run_pipeline(path: str | Path, *, run_dir: str | Path | None = None, start: str | None = None,
                 only: str | None = None, force: bool = False, progress: bool = True) -> dict:
    """Run a pipeline YAML (skipping stages that are up to date); returns its manifest."""
    return Pipeline(path, run_dir=run_dir, progress=progress).run(start=start, only=only, force=force)
