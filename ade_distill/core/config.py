"""Validated settings loaded from YAML, with errors that name the file, key and line."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import AdeDistillError, ModelError

M = TypeVar("M", bound=BaseModel)


class ConfigError(AdeDistillError, ValueError):
    """A configuration file that does not validate; the message names key and line."""


def _line_of(node, loc: tuple) -> int | None:
    """Line (1-based) of the YAML node at ``loc``, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if nxt is None:
                return line
            line, node = nxt[0].start_mark.line + 1, nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def load_yaml_model(path: str | Path, model: type[M], *, section: str | None = None) -> M:
    """Parse ``path`` (or one top-level ``section`` of it) into ``model``.

    Unknown keys are errors (models forbid extras), so a typo never becomes a silent default.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from exc
    prefix: tuple = ()
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise ConfigError(f"{path}: no top-level {section!r} section")
        data, prefix = data[section], (section,)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = prefix + tuple(err["loc"])
            line = _line_of(root, loc)
            key = ".".join(str(p) for p in loc)
            msg = "unknown key (typo?)" if err["type"] == "extra_forbidden" else err["msg"]
            msgs.append(f"{path}:{line}: {key}: {msg}")
        raise ConfigError("; ".join(msgs)) from exc


def resolve(cls: type[M], cfg: "M | str | Path | None", what: str = "setting", **overrides) -> M:
    """A ``cls`` settings object from an instance, a YAML path or the defaults (None), with
    validated overrides (None values are "not given")."""
    if cfg is None:
        cfg = cls()
    elif not isinstance(cfg, cls):
        cfg = load_yaml_model(cfg, cls)
    return with_overrides(cfg, what, **overrides)


def with_overrides(cfg: M, what: str = "setting", **overrides) -> M:
    """``cfg`` with the given keys replaced (None means "not given") and validated again, so a
    command-line ``--epochs 0`` is refused like ``epochs: 0`` in a file."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return cfg
    try:
        return type(cfg).model_validate({**cfg.model_dump(), **given})
    except ValidationError as exc:
        msgs = [f"{what} {'.'.join(str(p) for p in e['loc'])}={given.get(e['loc'][0], '')!r}: {e['msg']}"
                for e in exc.errors()]
        raise ConfigError("; ".join(msgs)) from exc


def resolve_model(ref: str) -> str:
    """An HF id or local path as given; ``package:<module>`` is a model folder shipped inside an
    installed Python package (the module's ``get_model_path()``, else its ``model/`` folder),
    the way the offline MiniLM stand-in arrives from PyPI."""
    if not ref.startswith("package:"):
        return ref
    import importlib

    name = ref.removeprefix("package:")
    try:
        mod = importlib.import_module(name)
    except ImportError as exc:
        raise ModelError(f"model {ref!r}: Python package {name!r} is not installed") from exc
    get = getattr(mod, "get_model_path", None)
    path = Path(get()) if get else Path(mod.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"model {ref!r}: no config.json in {path}")
    return str(path)
