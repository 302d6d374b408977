"""Paths as a report or a manifest should show them: never this machine's absolute layout.

Inside the repository: relative to it; the shared data beside it: ``../shared/...``; an installed
package's files: ``site-packages/<package>/...``; the temporary folder: ``<tmp>/...``; the home
folder: ``~/...``. Committed reports are checked for absolute paths (tests/test_readme.py).
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bases() -> list[tuple[Path, str]]:
    out = []
    for sp in {sysconfig.get_paths().get("purelib"), *(site.getsitepackages() if hasattr(site, "getsitepackages") else [])}:
        if sp:
            out.append((Path(sp), "site-packages"))
    out.append((Path(sys.prefix), "<venv>"))
    out += [(REPO, ""), (REPO.parent / "shared", "../shared")]
    out.append((Path(tempfile.gettempdir()), "<tmp>"))
    out.append((Path("/tmp"), "<tmp>"))
    out.append((Path.home(), "~"))
    return out


def shown(path: str | os.PathLike) -> str:
    """``path`` without this machine's layout (a relative path stays as it is)."""
    p = Path(path)
    if not p.is_absolute():
        return str(path)
    p = Path(os.path.abspath(p))
    for base, label in _bases():
        try:
            rel = p.relative_to(Path(os.path.abspath(base)))
        except ValueError:
            continue
        if not label:
            return rel.as_posix() or "."
        return f"{label}/{rel.as_posix()}" if rel.parts else label
    return str(path)


_ABS = re.compile(r"(?<![\w<~.])(/(?:home|work|tmp|root|var|opt|usr|Users)/[^\s\"'`,;:)\]}]*)")


def shown_text(text: str) -> str:
    """Every absolute path in a text (a command line, a log line) shown as ``shown`` shows it."""
    return _ABS.sub(lambda m: shown(m.group(1)), text)
