"""The prunable view of a CNN: channel groups from torch-pruning's dependency graph.

Every pruning operation in prune_gym goes through one :class:`PrunableNetwork`:
it traces the model once with ``torch_pruning.DependencyGraph``, lists the
**groups** of coupled output channels (a conv with its BatchNorm, the convs tied
together by residual adds or depthwise convs), and records for every conv,
linear and BatchNorm layer which group owns which of its input/output channels.
From that record it derives, without re-tracing:

* masked evaluation (``apply_masks``: forward hooks zero the dropped channels),
* the analytic MACs/params count of any keep-mask (``macs_params``),
* physical export through torch-pruning (``export``).

A *keep-mask* is a list with one boolean array per group (``True`` = channel
kept). The network's output layer (its last ``nn.Linear``, or the last ``nn.Conv2d`` of a
fully convolutional network) never loses outputs,
and a group always keeps at least one channel.

MACs are multiply-accumulates of conv and linear layers (BatchNorm, activations,
pooling and bias additions excluded); FLOPs as counted by
``torch.utils.flop_counter`` are 2 x MACs.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

KeepMask = Sequence[np.ndarray]

_CHANNEL_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d)


def _is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels == module.out_channels


@dataclass
class ChannelMap:
    """Which channels of one layer dimension a group owns: ``idxs[k]`` follows group channel ``root_idxs[k]``."""

    group: int
    idxs: np.ndarray
    root_idxs: np.ndarray


@dataclass
class LayerInfo:
    """Static facts about one conv, linear or BatchNorm layer, in forward order.

    ``out_maps``/``in_maps`` say which groups own which of its output/input
    channels (for BatchNorm and depthwise convs the channel dimension is listed
    under ``out_maps`` only). ``spatial`` is the number of output positions
    (H x W for a conv, 1 for a linear layer).
    """

    name: str
    module: nn.Module
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    spatial: int
    out_maps: list[ChannelMap] = field(default_factory=list)
    in_maps: list[ChannelMap] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``conv``, ``depthwise``, ``linear`` or ``batchnorm``."""
        if isinstance(self.module, nn.Linear):
            return "linear"
        if isinstance(self.module, nn.Conv2d):
            return "depthwise" if _is_depthwise(self.module) else "conv"
        return "batchnorm"


@dataclass(frozen=True)
class ChannelGroup:
    """A prunable unit: output channels of several layers that must be removed together.

    ``layer`` is the group's first conv in forward order (its kernel, stride and
    input width describe the group in observations); ``members`` names every
    conv/BatchNorm/linear layer whose output channels belong to the group.
    """

    index: int
    layer: LayerInfo = field(repr=False)
    members: tuple[str, ...]
    tp_group: tp.dependency.Group = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """Qualified name of the group's first conv."""
        return self.layer.name

    @property
    def num_channels(self) -> int:
        """Number of output channels of the unpruned group."""
        return self.layer.out_channels


def output_layer(model: nn.Module) -> nn.Module:
    """The layer whose outputs are the predictions, never pruned: the last ``nn.Linear`` in module order
    (a classifier), or, in a fully convolutional network (segmentation), the last ``nn.Conv2d``."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has neither nn.Linear nor nn.Conv2d layers: prune_gym prunes CNNs")
    return convs[-1]


class PrunableNetwork:
    """A CNN traced once by torch-pruning, with its channel groups in forward order.

    Args:
        model: the trained network (not modified except for temporary mask hooks).
        example_input: a batch (any size >= 1) of inputs of the right shape, on the model's device.
    """

    def __init__(self, model: nn.Module, example_input: torch.Tensor) -> None:
        self.model = model
        self.input_shape = tuple(example_input.shape[1:])
        self._output = output_layer(model)
        self.layers = self._trace_layers(example_input[:1])
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input[:1])
        self.groups = self._collect_groups(graph)
        self._layer_by_name = {layer.name: layer for layer in self.layers}
        self._mask_handles: list[torch.utils.hooks.RemovableHandle] = []
        self._build_counter()
        self.original_macs, self.original_params = self.macs_params(self.full_mask())

    # ------------------------------------------------------------------ tracing
    def _trace_layers(self, x: torch.Tensor) -> list[LayerInfo]:
        """Record every conv/linear/BatchNorm layer in forward-execution order with its output size."""
        order: list[LayerInfo] = []
        names = {module: name for name, module in self.model.named_modules()}

        def record(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            spatial = int(np.prod(output.shape[2:])) if output.dim() > 2 else 1
            info: tuple[int, int, int, int]
            if isinstance(module, nn.Conv2d):
                info = (module.in_channels, module.out_channels, module.kernel_size[0] * module.kernel_size[1], module.stride[0])
            elif isinstance(module, nn.Linear):
                info = (int(module.in_features), int(module.out_features), 1, 1)
            else:
                features = int(module.num_features)  # type: ignore[arg-type]
                info = (features, features, 1, 1)
            order.append(LayerInfo(names[module], module, *info, spatial=spatial))

        handles = [m.register_forward_hook(record) for m in self.model.modules() if isinstance(m, _CHANNEL_LAYERS)]
        try:
            was_training = self.model.training
            self.model.eval()
            with torch.inference_mode():
                self.model(x)
            self.model.train(was_training)
        finally:
            for handle in handles:
                handle.remove()
        return order

    def _collect_groups(self, graph: tp.DependencyGraph) -> list[ChannelGroup]:
        """Groups rooted at convs, ordered by their first conv's position in the forward pass."""
        position = {layer.module: i for i, layer in enumerate(self.layers)}
        by_module = {layer.module: layer for layer in self.layers}
        raw = []
        for group in graph.get_all_groups(ignored_layers=[self._output], root_module_types=[nn.Conv2d]):
            members = [item.dep.target.module for item in group if graph.is_out_channel_pruning_fn(item.dep.handler)]
            members = [m for m in members if m in position]
            convs = [m for m in members if isinstance(m, nn.Conv2d)]
            if convs:
                raw.append((min(position[m] for m in convs), group))
        raw.sort(key=lambda pair: pair[0])

        groups = []
        for index, (first, group) in enumerate(raw):
            members = []
            for item in group:
                layer = by_module.get(item.dep.target.module)
                if layer is None:
                    continue
                channel_map = ChannelMap(index, np.asarray(item.idxs, dtype=np.int64), np.asarray(item.root_idxs, dtype=np.int64))
                if graph.is_out_channel_pruning_fn(item.dep.handler):
                    layer.out_maps.append(channel_map)
                    members.append(layer.name)
                else:
                    layer.in_maps.append(channel_map)
            groups.append(ChannelGroup(index, self.layers[first], tuple(dict.fromkeys(members)), group))
        return groups

    # ------------------------------------------------------------- keep-masks
    @property
    def num_groups(self) -> int:
        """Number of prunable groups."""
        return len(self.groups)

    def full_mask(self) -> list[np.ndarray]:
        """The keep-mask that keeps every channel."""
        return [np.ones(group.num_channels, dtype=bool) for group in self.groups]

    def check_mask(self, keep: KeepMask) -> list[np.ndarray]:
        """Validate a keep-mask and return it as boolean arrays.

        Raises:
            ValueError: wrong number of groups, wrong width, or a group with no channel kept.
        """
        if len(keep) != self.num_groups:
            raise ValueError(f"keep-mask has {len(keep)} entries, the network has {self.num_groups} groups")
        checked = []
        for group, mask in zip(self.groups, keep):
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (group.num_channels,):
                raise ValueError(f"keep-mask of group {group.index} ({group.name}) has shape {mask.shape}, "
                                 f"expected ({group.num_channels},)")
            if not mask.any():
                raise ValueError(f"group {group.index} ({group.name}) must keep at least one channel")
            checked.append(mask)
        return checked

    # -------------------------------------------------------- analytic counts
    def _build_counter(self) -> None:
        """Precompute the linear maps from dropped channels to each layer's kept widths."""
        offsets = np.cumsum([0] + [g.num_channels for g in self.groups])
        self._group_offsets = offsets
        n_layers, n_channels = len(self.layers), int(offsets[-1])
        self._drop_out = np.zeros((n_layers, n_channels))
        self._drop_in = np.zeros((n_layers, n_channels))
        self._out_total = np.zeros(n_layers)
        self._in_total = np.zeros(n_layers)
        self._macs_coef = np.zeros(n_layers)
        self._weight_coef = np.zeros(n_layers)
        self._per_out_coef = np.zeros(n_layers)
        counted_params = 0
        for row, layer in enumerate(self.layers):
            module = layer.module
            counted_params += sum(p.numel() for p in module.parameters(recurse=False))
            for channel_map in layer.out_maps:
                np.add.at(self._drop_out[row], offsets[channel_map.group] + channel_map.root_idxs, 1.0)
            for channel_map in layer.in_maps:
                np.add.at(self._drop_in[row], offsets[channel_map.group] + channel_map.root_idxs, 1.0)
            self._out_total[row] = layer.out_channels
            self._in_total[row] = layer.in_channels
            has_bias = getattr(module, "bias", None) is not None
            if layer.kind == "batchnorm":
                self._per_out_coef[row] = 2.0 if module.affine else 0.0
                continue
            if layer.kind == "depthwise":
                self._in_total[row] = 1.0
                self._drop_in[row] = 0.0
            elif isinstance(module, nn.Conv2d) and module.groups != 1:
                raise ValueError(f"grouped conv {layer.name} (groups={module.groups}) is not supported; only dense and depthwise convs")
            self._weight_coef[row] = layer.kernel
            self._macs_coef[row] = layer.kernel * layer.spatial
            self._per_out_coef[row] = 1.0 if has_bias else 0.0
        self._other_params = sum(p.numel() for p in self.model.parameters()) - counted_params

    def layer_widths(self, keep: KeepMask) -> tuple[np.ndarray, np.ndarray]:
        """Kept (output, input) channels of every layer in ``self.layers`` under a keep-mask."""
        dropped = ~np.concatenate([np.asarray(m, dtype=bool) for m in keep])
        return self._out_total - self._drop_out @ dropped, self._in_total - self._drop_in @ dropped

    def layer_macs(self, keep: KeepMask) -> np.ndarray:
        """MACs of every layer in ``self.layers`` under a keep-mask (0 for BatchNorm)."""
        out_kept, in_kept = self.layer_widths(keep)
        return self._macs_coef * out_kept * in_kept

    def macs_params(self, keep: KeepMask) -> tuple[int, int]:
        """Analytic (MACs, params) of the network pruned by ``keep``, for one input.

        MACs are multiply-accumulates of conv and linear layers; params count
        every trainable parameter (BatchNorm running statistics are buffers, not params).
        """
        out_kept, in_kept = self.layer_widths(keep)
        macs = float(self._macs_coef @ (out_kept * in_kept))
        params = float(self._weight_coef @ (out_kept * in_kept) + self._per_out_coef @ out_kept) + self._other_params
        return int(round(macs)), int(round(params))

    # -------------------------------------------------------- masked forward
    def apply_masks(self, keep: KeepMask) -> None:
        """Zero the dropped channels in the forward pass of ``self.model`` (no copy, no weight change).

        The hooks stay until :meth:`remove_masks`; calling again replaces the mask.
        """
        keep = self.check_mask(keep)
        if not self._mask_handles:
            self._layer_masks = {}
            device = next(self.model.parameters()).device
            for layer in self.layers:
                if layer.out_maps:
                    mask = torch.ones(layer.out_channels, device=device)
                    self._layer_masks[layer.name] = mask
                    self._mask_handles.append(layer.module.register_forward_hook(_multiply_channels(mask)))
        for layer in self.layers:
            if layer.out_maps:
                values = np.ones(layer.out_channels, dtype=np.float32)
                for channel_map in layer.out_maps:
                    values[channel_map.idxs] = keep[channel_map.group][channel_map.root_idxs]
                self._layer_masks[layer.name].copy_(torch.from_numpy(values))

    def remove_masks(self) -> None:
        """Remove the mask hooks: the model computes its unpruned function again."""
        for handle in self._mask_handles:
            handle.remove()
        self._mask_handles.clear()

    # ----------------------------------------------------------------- export
    def export(self, keep: KeepMask) -> nn.Module:
        """A physically pruned deep copy of the model (torch-pruning removes the dropped channels).

        The original model is left untouched; the copy is in eval mode on the same device.
        """
        keep = self.check_mask(keep)
        self.remove_masks()
        pruned = copy.deepcopy(self.model).eval()
        device = next(pruned.parameters()).device
        example = torch.zeros((1, *self.input_shape), device=device)
        graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example)
        modules = dict(pruned.named_modules())
        for group, mask in zip(self.groups, keep):
            dropped = np.flatnonzero(~mask).tolist()
            if dropped:
                graph.get_pruning_group(modules[group.name], tp.prune_conv_out_channels, idxs=dropped).prune()
        return pruned


def _multiply_channels(mask: torch.Tensor):
    """A forward hook that multiplies the layer's output channels by ``mask``."""

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (output.dim() - 2)
        return output * mask.view(shape)

    return hook


def count_macs_params(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, int]:
    """Measured (MACs, params) of ``model`` for one input of shape ``input_shape`` (C, H, W).

    MACs = multiply-accumulates of conv and linear (matmul) operations, measured
    with ``torch.utils.flop_counter.FlopCounterMode`` (which reports FLOPs = 2 x MACs).
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros((1, *input_shape), device=device))
    model.train(was_training)
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters())
