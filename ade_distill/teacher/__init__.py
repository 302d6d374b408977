"""Sentences -> teacher-labelled Sentences (hard labels and confidences)."""

from .labeler import LabelStats, Teacher, TeacherConfig

__all__ = ["LabelStats", "Teacher", "TeacherConfig"]
