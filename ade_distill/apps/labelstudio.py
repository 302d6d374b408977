"""A small client for a Label Studio server's HTTP API (https://api.labelstud.io): create a
project with the ADE labelling interface, import tasks, export the reviewed ones.

Authentication: a legacy token (``Authorization: Token <key>``) or a personal access token (a
JWT refresh token: exchanged at /api/token/refresh for a short-lived access token, sent as
``Bearer``); the key comes from an environment variable and never reaches a log or an error
message.
"""

from __future__ import annotations

import logging

import httpx

from ..core.errors import AdeDistillError

log = logging.getLogger(__name__)


class LabelStudioError(AdeDistillError):
    pass


class LabelStudio:
    def __init__(self, url: str, api_key: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._key = api_key
        self._http = httpx.Client(base_url=self.url, timeout=timeout)
        self._auth = self._headers()

    def _headers(self) -> dict:
        if self._key.count(".") == 2 and self._key.startswith("eyJ"):  # a personal access token (JWT)
            r = self._http.post("/api/token/refresh", json={"refresh": self._key})
            if r.status_code != 200:
                raise LabelStudioError(f"{self.url}: the personal access token was refused (HTTP {r.status_code})")
            return {"Authorization": f"Bearer {r.json()['access']}"}
        return {"Authorization": f"Token {self._key}"}

    def _call(self, method: str, path: str, **kw):
        r = self._http.request(method, path, headers=self._auth, **kw)
        if r.status_code == 401 and self._auth["Authorization"].startswith("Bearer"):
            self._auth = self._headers()  # the short-lived access token expired
            r = self._http.request(method, path, headers=self._auth, **kw)
        if r.status_code >= 400:
            detail = r.text[:300].replace(self._key, "***")
            raise LabelStudioError(f"Label Studio {method} {path}: HTTP {r.status_code}: {detail}")
        return r.json() if r.content else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "LabelStudio":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the calls a review round needs --
    def create_project(self, title: str, label_config: str, description: str = "") -> int:
        return int(self._call("POST", "/api/projects", json={"title": title, "label_config": label_config,
                                                             "description": description})["id"])

    def import_tasks(self, project: int, tasks: list[dict]) -> int:
        out = self._call("POST", f"/api/projects/{project}/import", json=tasks)
        return int(out.get("task_count", len(tasks))) if isinstance(out, dict) else len(tasks)

    def tasks(self, project: int) -> list[dict]:
        out, page = [], 1
        while True:
            r = self._call("GET", "/api/tasks", params={"project": project, "page": page, "page_size": 100})
            batch = r.get("tasks", []) if isinstance(r, dict) else r
            out += batch
            total = r.get("total") if isinstance(r, dict) else None
            if not batch or total is None or len(out) >= total:
                return out
            page += 1

    def annotate(self, task: int, result: list[dict]) -> int:
        """Submit an annotation for a task (what a reviewer's Submit does)."""
        return int(self._call("POST", f"/api/tasks/{task}/annotations", json={"result": result, "was_cancelled": False})["id"])

    def export(self, project: int) -> list[dict]:
        """Every task with its annotations (Label Studio's JSON export)."""
        return self._call("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"})
