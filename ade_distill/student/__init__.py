"""Labelled sentences -> a student model folder -> predictions."""

from .extract import Extractor, predict_sentences
from .model import AdeStudent
from .train import TrainConfig, train_student

__all__ = ["AdeStudent", "Extractor", "TrainConfig", "predict_sentences", "train_student"]
