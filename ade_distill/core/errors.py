"""One root for every error a user can cause or fix: bad input, bad config, a teacher or
model that cannot be reached or loaded. The CLI prints any of them as one line and exits
with status 2; any other exception is a bug and keeps its traceback."""

from __future__ import annotations


class AdeDistillError(Exception):
    """Root of the errors a user can act on (the message names the file, record or setting)."""


class InputError(AdeDistillError, ValueError):
    """Input that cannot be read at all: a missing file, malformed XML, a missing column,
    a truncated .gz, a duplicate id."""


class ModelError(AdeDistillError):
    """A model folder that cannot be loaded: missing, corrupt or of another format."""
