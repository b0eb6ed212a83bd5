"""Parameter initialisation presets of the papers."""

from __future__ import annotations

import torch
from torch import nn

from nmt.errors import NmtError


def is_recurrent(name: str) -> bool:
    """torch RNN recurrent weights and the decoders' recurrent matrices `U`."""
    return ".weight_hh" in name or name.endswith(".U.weight")


def orthogonal_blocks(weight: torch.Tensor) -> None:
    """Each (H, H) gate block of a stacked (k H, H) recurrent matrix: random orthogonal."""
    for block in weight.data.split(weight.size(1), dim=0):
        nn.init.orthogonal_(block)


def papers_parameters(model: nn.Module):
    """(name, parameter) of every parameter but the layer norms' (encoder self-attention, not in
    the papers), which keep their gain 1 and bias 0 under every scheme."""
    norms = {
        f"{module}.{name}"
        for module, m in model.named_modules()
        if isinstance(m, nn.LayerNorm)
        for name, _ in m.named_parameters()
    }
    return ((name, p) for name, p in model.named_parameters() if name not in norms)


def init_bahdanau(model: nn.Module) -> None:
    """Bahdanau et al. 2014, B.1: orthogonal recurrent matrices, N(0, 0.001^2) for W_a and U_a,
    zero v_a and biases, N(0, 0.01^2) for every other weight."""
    for name, p in papers_parameters(model):
        if name.endswith("bias") or ".bias_" in name or ".v_a." in name:
            nn.init.zeros_(p)
        elif is_recurrent(name):
            orthogonal_blocks(p)
        elif ".W_a." in name or ".U_a." in name:
            nn.init.normal_(p, std=0.001)
        else:
            nn.init.normal_(p, std=0.01)


def init_uniform(model: nn.Module) -> None:
    """Luong et al. 2015, 4.1: every parameter uniform in [-0.1, 0.1]."""
    for _, p in papers_parameters(model):
        nn.init.uniform_(p, -0.1, 0.1)


INITS = {"bahdanau": init_bahdanau, "uniform": init_uniform, "torch": lambda model: None}


def initialize(model: nn.Module, scheme: str) -> None:
    """Initialise the model's parameters by `model.init`'s scheme."""
    if scheme not in INITS:
        raise NmtError(f"model.init: '{scheme}' is not one of {', '.join(INITS)}")
    INITS[scheme](model)
