"""Which Keras backend and device the CNN trains on, and what loading its model needs.

Keras picks its backend from ``KERAS_BACKEND`` when it is first imported, and each backend
picks its accelerator itself (JAX and TensorFlow take the first GPU they find). A run records
both, so a trial trained on a GPU is told from one trained on CPU when runs are compared.
"""

from __future__ import annotations

from importlib import metadata

import keras

# The distribution each backend's module comes from, in the order pip users install them
# (TensorFlow's CPU-only build ships the same `tensorflow` module).
_BACKEND_DISTRIBUTIONS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu"),
    "jax": ("jax",),
    "torch": ("torch",),
}


def backend_device() -> str:
    """``"cpu"``, or ``"gpu NVIDIA H200"``: the first device the backend computes on."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else f"{device.platform} {device.device_kind}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu"
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"gpu {details.get('device_name', gpus[0].name)}"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"gpu {torch.cuda.get_device_name(0)}"
    return "cpu"


def backend_requirements() -> list[str]:
    """``keras==3.x`` and the backend it ran on (``jax==0.x``): a Keras model file loads on
    any backend, but loading it needs one installed."""
    requirements = [f"keras=={keras.__version__}"]
    for name in _BACKEND_DISTRIBUTIONS.get(keras.backend.backend(), ()):
        try:
            requirements.append(f"{name}=={metadata.version(name)}")
            break
        except metadata.PackageNotFoundError:
            continue
    return requirements
