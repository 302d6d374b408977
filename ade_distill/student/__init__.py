"""Labelled sentences -> a student model folder -> predictions."""

from .extract import Student, predict_sentences
from .model import AdeStudent
from .train import TrainConfig, train_student

__all__ = ["AdeStudent", "Student", "TrainConfig", "predict_sentences", "train_student"]
