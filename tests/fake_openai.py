"""A stand-in for a remote OpenAI-compatible API on 127.0.0.1 (the real API cannot be reached here).

It answers chat completions from a table sentence -> answer text (or a function of the request
body), with per-token logprobs,
records every request (headers included), and can fail on demand (429/500) or answer slowly.
``faults(n)`` may name a fault for request n: "429", "500", "503", "timeout" (answers after
1 s), "html-body", "non-json-body" or "unparseable-answer"; ``injected`` counts them.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, answers: dict[str, str], *, fail: list[int] | None = None, delay: float = 0.0,
                 default: str = '{"ades": []}', faults=None, host: str = "127.0.0.1"):
        self.answers = answers
        self.faults = faults
        self.injected = 0
        self.fail = list(fail or [])
        self.delay = delay
        self.default = default
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout fault)
                    pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                fault = outer.faults(len(outer.requests)) if outer.faults else None
                if fault:
                    outer.injected += 1
                if fault in ("html-body", "non-json-body"):
                    data = (b"<html><body>502 Bad Gateway</body></html>" if fault == "html-body"
                            else b'{"choices": [ truncated')
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html" if fault == "html-body" else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if fault == "timeout":
                    time.sleep(1.0)
                if fault in ("429", "500", "503"):
                    outer.fail.insert(0, int(fault))
                if outer.fail:
                    code = outer.fail.pop(0)
                    data = json.dumps({"error": {"message": "fail", "type": "x"}}).encode()
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if outer.delay:
                    time.sleep(outer.delay)
                sentence = body["messages"][-1]["content"].removeprefix("Sentence: ")
                text = outer.answers(body) if callable(outer.answers) else outer.answers.get(sentence, outer.default)
                if fault == "unparseable-answer":
                    text = "Sorry, I cannot help with that."
                logprobs = None
                if body.get("logprobs"):
                    # one token per 3 characters, each with probability 0.9 and one alternative
                    toks = [text[i:i + 3] for i in range(0, len(text), 3)]
                    logprobs = {"content": [{"token": t, "logprob": -0.10536, "bytes": None, "top_logprobs": [
                        {"token": t, "logprob": -0.10536, "bytes": None},
                        {"token": "zz", "logprob": -2.302585, "bytes": None}]} for t in toks]}
                resp = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": logprobs,
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
                data = json.dumps(resp).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.base_url = f"http://{host}:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def non_loopback_address() -> str | None:
    """This machine's address on a non-loopback interface (for a stand-in that counts as remote),
    or None where there is none."""
    import socket

    for probe in ("192.0.2.254", "10.255.255.254"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((probe, 9))  # no packet is sent: this only picks the route's source address
            addr = s.getsockname()[0]
            if not addr.startswith("127."):
                return addr
        except OSError:
            pass
        finally:
            s.close()
    return None


def gold_answers(sentences, fmt: str = "json") -> dict[str, str]:
    from ade_distill.teacher.prompts import FORMATS

    return {s.text: FORMATS[fmt].answer_of(s) for s in sentences}


if __name__ == "__main__":  # for the kill-and-resume test: serve until killed
    import sys

    from ade_distill.core.schema import read_sentences

    srv = FakeOpenAI(gold_answers(read_sentences(sys.argv[1])), delay=float(sys.argv[2]))
    with srv:
        print(srv.base_url, flush=True)
        with open(sys.argv[3], "w") as log:
            n = 0
            while True:
                time.sleep(0.05)
                if len(srv.requests) != n:
                    n = len(srv.requests)
                    log.write(f"{n}\n")
                    log.flush()
