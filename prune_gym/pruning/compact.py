"""Compact evaluation: a narrow copy of the network that holds only the kept channels.

Scoring a keep-mask on the full-width network with zeroed channels (what AMC
and Distiller do) pays for every pruned channel; physically pruning a deep
copy with torch-pruning (what NNI's AMC does) re-walks the dependency graph at
every step. :class:`CompactNetwork` does neither: it deep-copies the model
once, and for each mask it index-selects the kept rows/columns of every
affected weight and BatchNorm statistic from the *original* tensors, using the
channel maps torch-pruning computed once in :class:`PrunableNetwork`. The
forward pass then costs what the physically pruned network costs.

**Prefix cache.** Masks scored one after another often differ only from some
group ``l`` on (try-and-learn's trials of layer ``l``: earlier layers fixed,
later ones whole; any dense reward: step ``t`` changes group ``t`` only). The
activations that do not depend on groups ``l, l+1, ...`` are then the same for
both masks. The copy is traced once with ``torch.fx``; every node is tagged with
the highest group its value depends on (through the weights it reads and its
inputs), and the *cut* before group ``l`` is the set of tensors computed from
groups ``< l`` only that feed the rest. When a mask first differs from the
previous one at group ``l``, the forward pass also returns the tensors at that
cut, kept per input batch; a later mask that agrees on groups ``< l`` starts
from them and runs only the nodes that depend on groups ``>= l``. The same ops
run on the same tensors, so outputs equal those of the whole network bit for
bit; BatchNorm recalibration passes (train-mode BatchNorm on the calibration
images) are cached like any other input. Memory: one set of cut tensors,
at most ``cache_bytes`` (inputs they belong to included; recording stops at
the bound), twice that while a new cut replaces the old one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.fx
from torch import nn

from prune_gym.pruning.network import ChannelMap, KeepMask, LayerInfo, PrunableNetwork
from prune_gym.validation import check_int

DEFAULT_CACHE_BYTES = 256 * 2**20
"""Default bound of the prefix cache (256 MiB of cut activations)."""


def _kept_indices(width: int, maps: list[ChannelMap], keep: KeepMask) -> np.ndarray | None:
    """Indices of the kept channels of one layer dimension, or None if the dimension is untouched."""
    if not maps:
        return None
    alive = np.ones(width, dtype=bool)
    for channel_map in maps:
        alive[channel_map.idxs] = keep[channel_map.group][channel_map.root_idxs]
    return None if alive.all() else np.flatnonzero(alive)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is b or (a is not None and b is not None and np.array_equal(a, b))


def _input_key(x: Any) -> tuple | None:
    """Identity of an input tensor's contents: storage address, layout and version (None: not cacheable)."""
    if not isinstance(x, torch.Tensor) or x.is_inference():  # inference tensors have no version counter
        return None
    return x.data_ptr(), tuple(x.shape), x.stride(), x.dtype, x.device, x._version


def _nbytes(values: Any) -> int:
    return sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))


@dataclass
class _CutTensors:
    """The tensors at the cut before group ``cut`` for the decisions ``prefix`` (groups ``< cut``), per input."""

    cut: int
    prefix: list[np.ndarray]
    tensors: dict[tuple, tuple[torch.Tensor, tuple]] = field(default_factory=dict)  # key -> (input, cut values)
    nbytes: int = 0

    def matches(self, keep: KeepMask) -> bool:
        return all(np.array_equal(a, b) for a, b in zip(self.prefix, keep[:self.cut]))


class _LayerTracer(torch.fx.Tracer):
    """fx tracer that keeps every conv/linear/BatchNorm layer of the network as one call (its weights are swapped)."""

    def __init__(self, layer_names: set[str]) -> None:
        super().__init__()
        self.layer_names = layer_names

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.layer_names or super().is_leaf_module(m, module_qualified_name)


class _SegmentedGraph:
    """The copy's fx graph, each node tagged with the highest group it depends on; compiles the segments after cuts."""

    def __init__(self, model: nn.Module, network: PrunableNetwork) -> None:
        groups_of = {layer.name: {m.group for m in layer.out_maps + layer.in_maps} for layer in network.layers}
        self.module = torch.fx.GraphModule(model, _LayerTracer(set(groups_of)).trace(model))
        self.nodes = list(self.module.graph.nodes)
        self.output = next(node for node in self.nodes if node.op == "output")
        self.last_group: dict[torch.fx.Node, int] = {}
        for node in self.nodes:
            own = groups_of.get(str(node.target), set()) if node.op == "call_module" else set()
            inherited = [self.last_group[n] for n in node.all_input_nodes]
            self.last_group[node] = max([-1, *own, *inherited])
        self.last_group[self.output] = network.num_groups  # the output always lies after every cut
        self._segments: dict[tuple[int, int | None], torch.fx.GraphModule] = {}

    def cut(self, group: int) -> list[torch.fx.Node]:
        """Nodes computed from groups ``< group`` only whose values feed nodes that depend on a group ``>= group``."""
        if group == 0:
            return [node for node in self.nodes if node.op == "placeholder"]
        return [node for node in self.nodes if self.last_group[node] < group
                and any(self.last_group[user] >= group for user in node.users)]

    def segment(self, start: int, record: int | None) -> torch.fx.GraphModule:
        """The network from the cut before group ``start`` (0: the input) on: takes that cut's tensors and returns
        the output, or ``(output, tensors at the cut before group record)`` when ``record`` is given."""
        key = (start, record)
        if key not in self._segments:
            graph = torch.fx.Graph()
            env = {node: graph.placeholder(node.name) for node in self.cut(start)}
            for node in self.nodes:
                if node not in env and node is not self.output and self.last_group[node] >= (start if start else -1):
                    env[node] = graph.node_copy(node, lambda n: env[n])
            result = torch.fx.map_arg(self.output.args[0], lambda n: env[n])
            if record is not None:
                result = (result, tuple(env[node] for node in self.cut(record)))
            graph.output(result)
            self._segments[key] = torch.fx.GraphModule(self.module, graph)
        return self._segments[key]


class _PrefixCachedForward(nn.Module):
    """The compact copy as a module (its layers are this module's) whose forward pass is :meth:`CompactNetwork.forward`."""

    def __init__(self, compact: CompactNetwork) -> None:
        super().__init__()
        self.copy = compact.model
        self.compact = compact

    def forward(self, x: torch.Tensor) -> Any:
        return self.compact.forward(x)


class CompactNetwork:
    """A reusable narrow copy of ``network.model``; :meth:`load` fills it for one keep-mask.

    The copy shares nothing with the original model: loading a mask never
    changes the original weights. Use :attr:`model` (or what :meth:`load`
    returns) for inference only. ``cache_bytes`` bounds the prefix cache (see
    the module docstring; 0 disables it, as does a model ``torch.fx`` cannot
    trace); ``prefix_hits`` counts forward passes that started from it.
    """

    def __init__(self, network: PrunableNetwork, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        cache_bytes = check_int("cache_bytes", cache_bytes, 0, "a number of bytes >= 0 (0 disables the prefix cache)")
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
        self._loaded: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = {}
        self.cache_bytes = cache_bytes
        self.graph = self._trace() if cache_bytes else None
        self.prefix_hits = 0
        self._previous: list[np.ndarray] | None = None
        self._source: _CutTensors | None = None
        self._target: _CutTensors | None = None
        self._forward = _PrefixCachedForward(self)

    def _trace(self) -> _SegmentedGraph | None:
        try:
            return _SegmentedGraph(self.model, self.network)
        except Exception:  # fx cannot trace every model (data-dependent control flow, ...): no prefix cache then
            return None

    def load(self, keep: KeepMask) -> nn.Module:
        """Make the copy compute the network pruned by ``keep``; returns it (with the prefix cache in its forward pass)."""
        keep = [np.array(mask, dtype=bool) for mask in keep]  # copies: the prefix cache remembers them
        for layer, module, originals in self._layers:
            out_idx = _kept_indices(layer.out_channels, layer.out_maps, keep)
            in_idx = _kept_indices(layer.in_channels, layer.in_maps, keep)
            loaded = self._loaded.get(layer.name)
            if loaded is not None and _same(loaded[0], out_idx) and _same(loaded[1], in_idx):
                continue
            self._loaded[layer.name] = (out_idx, in_idx)
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
        if self.graph is not None:
            self._plan(keep)
        return self._forward

    def _plan(self, keep: list[np.ndarray]) -> None:
        """Choose the cut tensors to start from and the cut to record for the passes under ``keep``."""
        usable = [c for c in (self._target, self._source) if c is not None and c.tensors and c.matches(keep)]
        self._source = max(usable, key=lambda c: c.cut) if usable else None
        self._target = None
        previous, self._previous = self._previous, keep
        if previous is None:
            return
        changed = [g for g, (a, b) in enumerate(zip(previous, keep)) if not np.array_equal(a, b)]
        start = self._source.cut if self._source is not None else 0
        if changed and changed[0] > start:
            self._target = _CutTensors(changed[0], keep[:changed[0]])

    def forward(self, x: torch.Tensor) -> Any:
        """The loaded network on ``x``: from the cached cut tensors of ``x`` when there are, recording the planned cut."""
        key = _input_key(x)
        if self.graph is None or key is None:
            return self.model(x)
        source, target = self._source, self._target
        cached = source.tensors.get(key) if source is not None else None
        if target is not None and target.nbytes + x.numel() * x.element_size() > self.cache_bytes:
            target = None
        if cached is None and target is None:
            return self.model(x)
        start, inputs = (source.cut, cached[1]) if cached is not None and source is not None else (0, (x,))
        self.prefix_hits += cached is not None
        result = self.graph.segment(start, target.cut if target is not None else None)(*inputs)
        if target is None:
            return result
        output, tensors = result
        size = _nbytes(tensors) + x.numel() * x.element_size()
        if target.nbytes + size <= self.cache_bytes:
            target.tensors[key] = (x, tensors)  # holding x keeps its storage (and so the key) from being reused
            target.nbytes += size
        return output
