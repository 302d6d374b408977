"""Gold + predictions -> metrics -> report."""

from .metrics import EvaluationError, evaluate, prf

__all__ = ["EvaluationError", "evaluate", "prf"]
