"""Teacher backends behind one interface: ``from_config(cfg)``, ``complete(messages, params) ->
Completion``, ``close()``; each registered by name in ``registry.teacher_backends`` (a plug-in adds
one the same way, or through the ``ade_distill.teacher_backends`` entry-point group).

- ``openai``: the OpenAI API or any OpenAI-compatible server (vLLM, llama.cpp, Ollama, Azure).
- ``local-server``: llama.cpp's server started and stopped around a run (see server.py).
- ``hf-local``: a transformers causal LM on this machine (GPU when present).
Batch export/import and replay of other tools' labels live in labeler.py, since they
produce labels without calling a model from here.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Protocol

from ..core.config import ConfigError
from ..core.errors import AdeDistillError
from ..core.registry import teacher_backends
from .confidence import TokenLogprob

log = logging.getLogger(__name__)


@dataclass
class Completion:
    text: str
    tokens: list[TokenLogprob] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None

    def to_json(self) -> dict:
        return {"text": self.text, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "finish_reason": self.finish_reason,
                "tokens": [[t.token, t.logprob, t.top] for t in self.tokens]}

    @classmethod
    def from_json(cls, d: dict) -> "Completion":
        return cls(text=d["text"], prompt_tokens=d.get("prompt_tokens", 0),
                   completion_tokens=d.get("completion_tokens", 0), finish_reason=d.get("finish_reason"),
                   tokens=[TokenLogprob(t, lp, [tuple(x) for x in top]) for t, lp, top in d.get("tokens", [])])


@dataclass
class SamplingParams:
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int | None = 0
    logprobs: bool = True
    top_logprobs: int = 5
    response_format: str = "json_schema"  # json_schema (llama.cpp) | json_object (OpenAI) | none
    schema: dict | None = None  # the JSON schema a json_schema answer follows (default: the ADE list's)

    def key(self) -> dict:
        key = {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed,
               "logprobs": self.logprobs, "top_logprobs": self.top_logprobs,
               "response_format": self.response_format}
        if self.schema is not None:  # only when set: the cache keys of labelling calls stay as they were
            key["schema"] = self.schema
        return key


class TransientError(RuntimeError):
    """Worth retrying: 429, 5xx, timeouts, a dropped connection."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestRejected(ValueError):
    """The server refused this one request (e.g. HTTP 400, context too long): a failure for
    this sentence, not for the run."""


class AccessDenied(AdeDistillError, RuntimeError):
    """HTTP 401/403: every further call would fail the same way, so the run stops."""


class Backend(Protocol):
    kind: str
    model: str

    def complete(self, messages: list[dict], params: SamplingParams) -> Completion: ...

    def close(self) -> None: ...


def with_retries(call, *, retries: int = 5, base: float = 1.0, cap: float = 60.0, sleep=time.sleep):
    """Run ``call()``; on TransientError back off exponentially with full jitter, honouring
    Retry-After when the server sends it."""
    for attempt in range(retries + 1):
        try:
            return call()
        except TransientError as exc:
            if attempt == retries:
                raise
            delay = random.uniform(0, min(cap, base * 2 ** attempt))
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            log.warning("teacher call failed (%s); retry %d/%d in %.1f s", exc, attempt + 1, retries, delay)
            sleep(delay)
    raise AssertionError("unreachable")


@teacher_backends.register("openai")
class OpenAIBackend:
    """Chat completions through the official ``openai`` client.

    The API key is read from the environment variable the config names and handed to the
    client only; it is never part of a cache key, a record, a log line or a manifest.
    """

    kind = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str | None = "OPENAI_API_KEY",
                 timeout: float = 120.0) -> None:
        import openai

        key = os.environ.get(api_key_env) if api_key_env else None
        if not key:
            if base_url is None:
                raise ConfigError(f"environment variable {api_key_env} holds no API key for the OpenAI API")
            key = "not-needed"  # local OpenAI-compatible servers ignore it
        self.model = model
        self.base_url = base_url
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)

    @classmethod
    def from_config(cls, c) -> "OpenAIBackend":
        return cls(c.model, base_url=c.base_url, api_key_env=c.api_key_env, timeout=c.timeout or 120.0)

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _response_format(self, params: SamplingParams) -> dict | None:
        from .prompts import OUTPUT_SCHEMA

        if params.response_format == "json_schema":
            # llama.cpp turns {"type": "json_object", "schema": ...} into a grammar
            return {"type": "json_object", "schema": params.schema or OUTPUT_SCHEMA}
        if params.response_format == "json_object":
            return {"type": "json_object"}
        return None

    def complete(self, messages: list[dict], params: SamplingParams) -> Completion:
        import openai

        kwargs: dict = {"model": self.model, "messages": messages, "temperature": params.temperature,
                        "max_tokens": params.max_tokens}
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = params.top_logprobs
        fmt = self._response_format(params)
        if fmt is not None:
            kwargs["response_format"] = fmt
        try:
            resp = self._client.chat.completions.create(**kwargs)
        except openai.RateLimitError as exc:
            raise TransientError("HTTP 429", _retry_after(exc)) from exc
        except openai.InternalServerError as exc:
            raise TransientError(f"HTTP {exc.status_code}", _retry_after(exc)) from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise TransientError(type(exc).__name__) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise AccessDenied(f"HTTP {exc.status_code}: the endpoint refused the credentials") from exc
        except openai.APIStatusError as exc:
            raise RequestRejected(f"HTTP {exc.status_code}: {str(exc.message)[:200]}") from exc
        except (openai.APIResponseValidationError, ValueError) as exc:  # a body that is not the API's JSON
            raise TransientError(f"malformed response body ({type(exc).__name__})") from exc
        # A proxy or gateway can answer 200 with an HTML page: the client then hands back text.
        if isinstance(resp, (str, bytes)) or not getattr(resp, "choices", None):
            raise TransientError("the server answered 200 without a chat completion (an HTML or empty body)")
        choice = resp.choices[0]
        tokens = []
        if choice.logprobs is not None and choice.logprobs.content:
            for c in choice.logprobs.content:
                top = [(t.token, t.logprob) for t in (c.top_logprobs or [])]
                tokens.append(TokenLogprob(c.token, c.logprob, top))
        usage = resp.usage
        return Completion(text=choice.message.content or "", tokens=tokens,
                          prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                          completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                          finish_reason=choice.finish_reason)

    def close(self) -> None:
        self._client.close()


def _retry_after(exc) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None


@teacher_backends.register("local-server")
class LocalServerBackend(OpenAIBackend):
    """llama.cpp's server for the duration of a run, reached through the openai client."""

    kind = "local-server"

    @classmethod
    def from_config(cls, c) -> "LocalServerBackend":
        return cls(c.model, n_ctx=c.n_ctx, n_threads=c.n_threads, server=c.server, parallel=c.parallel,
                   timeout=c.timeout or 600.0, extra_args=tuple(c.server_args))

    def __init__(self, gguf: str, *, n_ctx: int = 2048, n_threads: int | None = None,
                 log_path=None, timeout: float = 600.0, server: str = "llama-cpp-python",
                 parallel: int = 1, extra_args: tuple[str, ...] = ()) -> None:
        from .server import LlamaServer

        self.server = LlamaServer(gguf, n_ctx=n_ctx, n_threads=n_threads, log_path=log_path, impl=server,
                                  parallel=parallel, extra_args=extra_args).start()
        super().__init__(self.server.model_alias, base_url=self.server.base_url, api_key_env=None,
                         timeout=timeout)

    def close(self) -> None:
        super().close()
        self.server.stop()


@teacher_backends.register("hf-local")
class HFLocalBackend:
    """A transformers causal LM (HF id or local folder); GPU when there is one.

    Greedy or sampled generation through the model's chat template; per-token
    log-probabilities come from the generation scores. No ``trust_remote_code``.
    """

    kind = "hf-local"

    @classmethod
    def from_config(cls, c) -> "HFLocalBackend":
        return cls(c.model, gguf_file=c.gguf_file)

    def __init__(self, model: str, *, device: str | None = None, dtype: str = "auto",
                 gguf_file: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model if gguf_file is None else f"{model}/{gguf_file}"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = {"auto": torch.bfloat16 if self.device == "cuda" else torch.float32,
                       "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(model, **kw)
        self.lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, **kw).to(self.device).eval()

    def complete(self, messages: list[dict], params: SamplingParams) -> Completion:
        import torch

        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        enc = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        gen_kw = {"max_new_tokens": params.max_tokens, "output_scores": True, "return_dict_in_generate": True,
                  "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if params.temperature > 0:
            gen_kw.update(do_sample=True, temperature=params.temperature)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        else:
            gen_kw.update(do_sample=False)
        with torch.inference_mode():
            out = self.lm.generate(**enc, **gen_kw)
        new = out.sequences[0, enc["input_ids"].shape[1]:]
        tokens = []
        for tok_id, scores in zip(new.tolist(), out.scores):
            logp = torch.log_softmax(scores[0].float(), dim=-1)
            top = torch.topk(logp, params.top_logprobs)
            piece = self.tokenizer.decode([tok_id])
            tokens.append(TokenLogprob(piece, float(logp[tok_id]),
                                       [(self.tokenizer.decode([i]), float(v))
                                        for v, i in zip(top.values.tolist(), top.indices.tolist())]))
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Completion(text=text, tokens=tokens if params.logprobs else [],
                          prompt_tokens=int(enc["input_ids"].shape[1]), completion_tokens=len(new),
                          finish_reason="stop")

    def close(self) -> None:
        pass
