"""Compact evaluation: a narrow copy of the network that holds only the kept channels.

Scoring a keep-mask on the full-width network with zeroed channels (what AMC
and Distiller do) pays for every pruned channel; physically pruning a deep
copy with torch-pruning (what NNI's AMC does) re-walks the dependency graph at
every step. :class:`CompactNetwork` does neither: it deep-copies the model
once, and for each mask it index-selects the kept rows/columns of every
affected weight and BatchNorm statistic from the *original* tensors, using the
channel maps torch-pruning computed once in :class:`PrunableNetwork`. The
forward pass then costs what the physically pruned network costs.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from prune_gym.pruning.network import KeepMask, LayerInfo, PrunableNetwork, _ChannelMap


def _kept_indices(width: int, maps: list[_ChannelMap], keep: KeepMask) -> np.ndarray | None:
    """Indices of the kept channels of one layer dimension, or None if the dimension is untouched."""
    if not maps:
        return None
    alive = np.ones(width, dtype=bool)
    for channel_map in maps:
        alive[channel_map.idxs] = keep[channel_map.group][channel_map.root_idxs]
    return None if alive.all() else np.flatnonzero(alive)


class CompactNetwork:
    """A reusable narrow copy of ``network.model``; :meth:`load` fills it for one keep-mask.

    The copy shares nothing with the original model: loading a mask never
    changes the original weights. Use :attr:`model` for inference only.
    """

    def __init__(self, network: PrunableNetwork) -> None:
        self.network = network
        self.model = copy.deepcopy(network.model).eval().requires_grad_(False)
        copies = dict(self.model.named_modules())
        self._device = next(self.model.parameters()).device
        self._layers: list[tuple[LayerInfo, nn.Module, dict[str, torch.Tensor]]] = []
        for layer in network.layers:
            if layer.out_maps or layer.in_maps:
                module = copies[layer.name]
                originals = {name: tensor.detach().clone() for name, tensor in
                             list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
                             if tensor is not None and tensor.dim() > 0}
                self._layers.append((layer, module, originals))

    def load(self, keep: KeepMask) -> nn.Module:
        """Make :attr:`model` compute the network pruned by ``keep``; returns it."""
        for layer, module, originals in self._layers:
            out_idx = _kept_indices(layer.out_channels, layer.out_maps, keep)
            in_idx = _kept_indices(layer.in_channels, layer.in_maps, keep)
            out_t = None if out_idx is None else torch.from_numpy(out_idx).to(self._device)
            in_t = None if in_idx is None else torch.from_numpy(in_idx).to(self._device)
            for name, tensor in originals.items():
                if out_t is not None:
                    tensor = tensor.index_select(0, out_t)
                if in_t is not None and name == "weight" and tensor.dim() > 1:
                    tensor = tensor.index_select(1, in_t)
                if name in module._parameters:
                    module._parameters[name] = nn.Parameter(tensor, requires_grad=False)
                else:
                    module._buffers[name] = tensor
            if layer.kind == "depthwise":
                setattr(module, "groups", len(out_idx) if out_idx is not None else layer.out_channels)  # noqa: B010
        return self.model
