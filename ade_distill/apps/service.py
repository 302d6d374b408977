"""`ade-distill serve --model DIR`: the student as an HTTP service (FastAPI on uvicorn).

- ``POST /extract``: ``{"texts": [...]}`` or ``{"documents": [{"id", "title", "text"}]}`` in;
  the ADE records out, the same fields and offsets ``ade-distill extract`` writes (one JSONL line
  each), plus per-document errors for a document that could not be processed.
- ``GET /health`` (no token: for liveness probes), ``GET /model`` (id, version, labels,
  settings, training summary, and the scores it was evaluated with when ``--metrics`` is given),
  ``/docs`` and ``/openapi.json``.

Requests are batched across callers: each waits in a queue for at most ``batch_wait_ms`` while
others arrive (up to ``max_batch_documents``), and one model call serves them all, in a worker
thread, so the event loop keeps accepting connections. Back-pressure: when ``max_queued_documents``
are waiting or in the model, a request is answered 503 with Retry-After (the queue's measured drain
time), never queued without bound. Limits answer 4xx with a message: a body
over ``max_body_bytes`` is 413 (read no further), too many documents or too long a text is 422.
With ``token`` set (``--token-env NAME`` names the variable that holds it), every route but
/health wants ``Authorization: Bearer <token>`` (401 otherwise); the token is never logged, and
document text is not logged either (uvicorn's access log has the path and status only).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..core.io import AdeRecord, records_of
from ..core.schema import Document
from ..student.model import model_info

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceLimits:
    max_body_bytes: int = 1_000_000
    max_documents: int = 64  # per request
    max_chars: int = 100_000  # per document
    max_batch_documents: int = 128  # per model call, across callers
    # sentences per encoder pass within a model call: the call's sentences are sorted by length and run
    # in passes of this many, so a short sentence is not padded to the longest of 32 callers' (the
    # service's throughput at 32 callers: reports/serve/load.md)
    model_batch: int = 8
    batch_wait_ms: float = 5.0
    # documents waiting or in the model at once; a request that would pass it is answered 503 with
    # Retry-After (back-pressure: never an unbounded backlog)
    max_queued_documents: int = 512

    def __post_init__(self) -> None:
        from ..core.errors import InputError

        bad = [k for k, v in vars(self).items() if v < 0 or (v == 0 and k != "batch_wait_ms")]
        if bad:
            raise InputError("service limits must be positive (batch_wait_ms may be 0): "
                             + ", ".join(f"{k}={getattr(self, k)}" for k in bad))


class Overloaded(Exception):
    """The service's queue is full; ``retry_after``: seconds until it has likely drained."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy: retry after {retry_after} s")
        self.retry_after = retry_after


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=512)
    title: str = ""
    text: str


class ExtractRequest(BaseModel):
    """Either ``texts`` (ids text-0, text-1, ... in order) or ``documents`` (your ids)."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] | None = None
    documents: list[DocumentIn] | None = None

    @model_validator(mode="after")
    def _one(self) -> "ExtractRequest":
        if (self.texts is None) == (self.documents is None):
            raise ValueError("give either texts or documents")
        return self

    def as_documents(self) -> list[Document]:
        if self.texts is not None:
            return [Document(id=f"text-{i}", text=t) for i, t in enumerate(self.texts)]
        return [Document(id=d.id, title=d.title, text=d.text) for d in self.documents or []]


class ExtractResponse(BaseModel):
    records: list[AdeRecord]  # the dataclass `extract` writes: one schema for both
    documents: int
    sentences: int
    errors: list[str] = Field(default_factory=list)
    model: str
    seconds: float


class Batcher:
    """Collects callers' documents for one model call (at most ``max_documents``, waiting at most
    ``wait_ms`` for more after the first) and hands each caller its own documents' results."""

    def __init__(self, student, *, max_documents: int, wait_ms: float, post=None, max_pending: int = 512) -> None:
        self.student = student
        self.max_pending, self.pending = max_pending, 0
        self.docs_per_s = 0.0  # measured over the last model calls (moving average)
        self.post = post  # the post-processing chain (post/chain.py), run in the model thread
        self.max_documents = max_documents
        self.wait = wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ade-model")  # one model, one caller at a time
        self.calls = 0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self.pool.shutdown(wait=True)

    async def submit(self, docs: list[Document]) -> list[tuple[Document, list | None, str | None]]:
        """Each document's result; raises Overloaded when the queue cannot take ``docs``."""
        if self.pending + len(docs) > self.max_pending:
            rate = self.docs_per_s or 1.0
            raise Overloaded(max(1, min(60, math.ceil(self.pending / rate))))
        self.pending += len(docs)
        try:
            fut = asyncio.get_running_loop().create_future()
            await self.queue.put((docs, fut))
            return await fut
        finally:
            self.pending -= len(docs)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            n = len(batch[0][0])
            deadline = loop.time() + self.wait
            while n < self.max_documents:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
                batch.append(item)
                n += len(item[0])
            docs = [d for ds, _ in batch for d in ds]
            t0 = loop.time()
            try:
                done = await loop.run_in_executor(self.pool, self._run, docs)
            except Exception as exc:  # the model failed: every caller in the batch is told
                log.exception("extraction failed for a batch of %d documents", len(docs))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.calls += 1
            rate = len(docs) / max(loop.time() - t0, 1e-6)
            self.docs_per_s = rate if not self.docs_per_s else 0.8 * self.docs_per_s + 0.2 * rate
            for ds, fut in batch:
                if not fut.done():  # a caller that went away is skipped
                    fut.set_result([done[id(d)] for d in ds])

    def _run(self, docs: list[Document]) -> dict[int, tuple[Document, list | None, str | None]]:
        from ..ingest import Problems

        problems = Problems()
        out = {id(d): (d, self.post.apply(d, s) if self.post is not None else s, None)
               for d, s in self.student.extract_documents(docs, chunk=1 << 30, problems=problems)}
        msgs = iter(problems.messages)
        for d in docs:  # a document extract_documents skipped: its message, in order
            if id(d) not in out:
                out[id(d)] = (d, None, next(msgs, f"document {d.id!r} could not be processed"))
        return out


def create_app(model_dir: str | Path, *, token: str | None = None, limits: ServiceLimits = ServiceLimits(),
               metrics: str | Path | None = None, quantize: str | None = None, device: str | None = None,
               threads: int | None = None, runtime: str = "torch", post=None):
    """The FastAPI application serving one student folder; ``post`` (a ``post.chain.PostConfig``)
    adds substances, MedDRA coding and assertion flags to the records."""
    from ..post.chain import PostProcessor
    from ..student import Student

    info = model_info(model_dir, metrics)
    chain = PostProcessor.from_config(post)
    student = Student.from_pretrained(model_dir, quantize=quantize, device=device, threads=threads, runtime=runtime,
                                      batch_size=limits.model_batch)
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        state["batcher"] = b = Batcher(student, max_documents=limits.max_batch_documents, wait_ms=limits.batch_wait_ms,
                                       post=chain if chain.active else None, max_pending=limits.max_queued_documents)
        b.start()
        yield
        await b.stop()

    app = FastAPI(title="ade-distill", version=info["version"], lifespan=lifespan,
                  description="Adverse drug event extraction by a distilled student model.")

    def authorised(request: Request) -> None:
        if token is None:
            return
        got = request.headers.get("authorization", "")
        if not (got.startswith("Bearer ") and hmac.compare_digest(got[7:].encode(), token.encode())):
            raise HTTPException(401, "missing or wrong API token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health")
    async def health() -> dict:
        b = state.get("batcher")
        return {"status": "ok", "model": info["id"], "batches": b.calls if b else 0, "queued": b.pending if b else 0}

    @app.get("/model", dependencies=[Depends(authorised)])
    async def model() -> dict:
        return info

    body_schema = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": ExtractRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}}

    @app.post("/extract", response_model=ExtractResponse, dependencies=[Depends(authorised)],
              openapi_extra=body_schema)
    async def extract(request: Request):
        t0 = time.perf_counter()
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise HTTPException(413, f"request body of {int(declared):,} bytes is over the limit of "
                                     f"{limits.max_body_bytes:,}; send fewer documents per request")
        body = bytearray()
        async for chunk in request.stream():  # a body without Content-Length is counted as it comes
            body += chunk
            if len(body) > limits.max_body_bytes:
                raise HTTPException(413, f"request body is over the limit of {limits.max_body_bytes:,} bytes; "
                                         "send fewer documents per request")
        try:
            req = ExtractRequest.model_validate_json(bytes(body))
        except ValidationError as exc:
            return JSONResponse({"detail": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]},
                                status_code=422)
        docs = req.as_documents()
        if len(docs) > limits.max_documents:
            raise HTTPException(422, f"{len(docs)} documents in one request; at most {limits.max_documents}")
        for d in docs:
            if len(d.full_text) > limits.max_chars:
                raise HTTPException(422, f"document {d.id!r} has {len(d.full_text):,} characters; "
                                         f"at most {limits.max_chars:,} per document")
        try:
            results = await state["batcher"].submit(docs)
        except Overloaded as exc:
            return JSONResponse({"detail": f"the service is busy ({state['batcher'].pending:,} documents queued); "
                                           f"retry after {exc.retry_after} s"}, status_code=503,
                                headers={"Retry-After": str(exc.retry_after)})
        records, errors, n_sent = [], [], 0
        for _, sents, err in results:
            if err is not None:
                errors.append(err)
                continue
            n_sent += len(sents)
            records += [r.to_json() for s in sents for r in records_of(s)]
        return {"records": records, "documents": len(docs), "sentences": n_sent, "errors": errors,
                "model": f"{info['id']}@{info['version']}", "seconds": round(time.perf_counter() - t0, 4)}

    return app


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          limits: ServiceLimits = ServiceLimits(), metrics: str | Path | None = None, quantize: str | None = None,
          device: str | None = None, threads: int | None = None, runtime: str = "torch", log_level: str = "info",
          post=None) -> None:
    """Run the service until interrupted (uvicorn, one process)."""
    import uvicorn

    app = create_app(model_dir, token=token, limits=limits, metrics=metrics, quantize=quantize, device=device,
                     threads=threads, runtime=runtime, post=post)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
