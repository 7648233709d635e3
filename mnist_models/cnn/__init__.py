"""The Keras 3 CNN: backend-agnostic model, affine and elastic augmentation layers, trainer.

Importing this package imports Keras; the trainer registry (:mod:`mnist_models.trainers`)
does so only when a config asks for ``model = "cnn"``.
"""

import os

# TensorFlow's C++ start-up chatter (CPU features, graph attributes) drowns the progress lines;
# a user who wants it sets TF_CPP_MIN_LOG_LEVEL themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_models.cnn.augment import RandomAffine, RandomElastic
from mnist_models.cnn.model import build_cnn, build_optimizer

__all__ = ["RandomAffine", "RandomElastic", "build_cnn", "build_optimizer"]
