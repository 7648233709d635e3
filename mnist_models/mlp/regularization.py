"""L2 weight decay, coupled: its gradient joins the loss gradient before the optimizer step.

The objective the optimizer descends is ``data loss + weight_decay / 2 * sum(W**2)``, the sum
over the weight matrices of the :class:`~mnist_models.mlp.layers.Linear` layers (biases are
not decayed). Its gradient adds ``weight_decay * W`` to each weight's ``grad``; with Adam it
then goes through the moments like any gradient (L2 regularisation, not AdamW's decoupled
decay).
"""

from __future__ import annotations

from mnist_models.mlp.layers import Layer, Linear, Parameter, Sequential

__all__ = ["add_l2_gradient", "decayed_parameters", "l2_penalty"]


def decayed_parameters(model: Layer) -> list[Parameter]:
    """The parameters weight decay applies to: each ``Linear`` layer's weight, in order
    (never a bias), looking inside :class:`Sequential` containers."""
    if isinstance(model, Linear):
        return [model.weight]
    if isinstance(model, Sequential):
        return [p for layer in model for p in decayed_parameters(layer)]
    return []


def l2_penalty(params: list[Parameter], weight_decay: float) -> float:
    """``weight_decay / 2 * sum(W**2)`` over ``params``' values.

    Args:
        params: The decayed parameters (see :func:`decayed_parameters`).
        weight_decay: The penalty weight, >= 0.
    """
    if weight_decay == 0.0:
        return 0.0
    total = 0.0
    for p in params:
        flat = p.value.reshape(-1)
        total += float(flat @ flat)
    return weight_decay / 2 * total


def add_l2_gradient(params: list[Parameter], weight_decay: float, scale: float = 1.0) -> None:
    """Adds the penalty's gradient, ``scale * weight_decay * W``, to each parameter's ``grad``.

    Call it after the backward pass has filled the ``grad`` arrays (which it overwrites) and
    before the optimizer's step. (A preallocated buffer for the product measured no faster
    than numpy's temporary, so there is none.)

    Args:
        params: The decayed parameters (see :func:`decayed_parameters`).
        weight_decay: The penalty weight, >= 0 (0 leaves the gradients alone).
        scale: What the loss gradient was multiplied by before the backward pass (the
            optimizer's ``loss_scale``: ``-lr`` when SGD folds its learning rate), so the
            decay term is scaled like the data term beside it.
    """
    if weight_decay == 0.0:
        return
    coefficient = float(scale) * float(weight_decay)  # a python float: never upcasts float32
    for p in params:
        p.grad += coefficient * p.value
