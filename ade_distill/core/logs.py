"""Logging for the command line: quiet by default, more with -v.

ade-distill's own messages go to stderr as ``ade-distill: LEVEL: message`` (warnings by default, so no
document text; -v info, -vv debug, which may show text); other libraries' load reports and
progress bars (transformers) only at -vv.
"""

from __future__ import annotations

import logging
import sys


def setup_logging(verbose: int) -> None:
    """Our own stderr handler on the package logger, at the level ``verbose`` asks for."""
    logger = logging.getLogger("ade_distill")
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ade-distill: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING - 10 * min(verbose, 2))
    logger.propagate = False
    if verbose < 2:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
