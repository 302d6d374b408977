"""Registries of the things users extend: teacher backends, document readers, ADE record writers,
student runtimes. A new one is one module plus one registration, reachable from YAML and the
command line by its name, from inside the package or from outside it:

    from ade_distill.core.registry import teacher_backends

    @teacher_backends.register("my-api")
    class MyBackend:
        @classmethod
        def from_config(cls, cfg): ...
        def complete(self, messages, params): ...
        def close(self): ...

or, from another installed package, through an entry point (the way spaCy finds factories):

    [project.entry-points."ade_distill.teacher_backends"]
    my-api = "my_package.backend:MyBackend"

Entry points are read when a name is missing (and when all names are listed), so an installed
plug-in costs nothing until it is asked for, and one installed while a process runs is found.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Callable, Generic, TypeVar

from .errors import AdeDistillError

log = logging.getLogger(__name__)
T = TypeVar("T")


class RegistryError(AdeDistillError, LookupError):
    """A name no registration and no installed entry point provides."""


class Registry(Generic[T]):
    """Names -> objects of one kind; ``group`` is the entry-point group plug-ins register under."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind, self.group = kind, group
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name`` (or use as a decorator); a name registered twice is an error."""
        def add(o: T) -> T:
            if name in self._items and self._items[name] is not o:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = o
            return o

        return add(obj) if obj is not None else add

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def _read_entry_points(self) -> None:
        for ep in metadata.entry_points(group=self.group):
            if ep.name in self._items:
                continue
            try:
                self._items[ep.name] = ep.load()
            except Exception as exc:  # a broken plug-in must not break the others: name it
                log.warning("%s %r from entry point %s could not be loaded: %s", self.kind, ep.name, ep.value, exc)

    def get(self, name: str) -> T:
        if name not in self._items:
            self._read_entry_points()
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())}; "
                                f"plug-ins register under the entry-point group {self.group!r})") from None

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except RegistryError:
            return False
        return True


teacher_backends: Registry = Registry("teacher backend", "ade_distill.teacher_backends")
readers: Registry = Registry("document reader", "ade_distill.readers")
writers: Registry = Registry("ADE record writer", "ade_distill.writers")
runtimes: Registry = Registry("student runtime", "ade_distill.runtimes")
