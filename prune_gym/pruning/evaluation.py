"""Scoring keep-masks on the reward split, with a bounded cache keyed by the mask."""

from __future__ import annotations

from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from typing import Literal

import numpy as np
import torch

from prune_gym.pruning.batchnorm import batchnorm_layers, recalibrated
from prune_gym.pruning.compact import DEFAULT_CACHE_BYTES, CompactNetwork
from prune_gym.pruning.network import KeepMask, PrunableNetwork
from prune_gym.tasks.metrics import evaluate, get_metric
from prune_gym.validation import check_int

EVALUATION_METHODS = ("compact", "masked")


class MaskEvaluator:
    """The task metric of a :class:`PrunableNetwork` under keep-masks, on fixed labelled samples.

    ``method="compact"`` (default) runs a :class:`CompactNetwork` holding only
    the kept channels, as fast as the physically pruned network;
    ``method="masked"`` runs the full-width model with the dropped channels
    zeroed by hooks (same accuracy, slower; kept for checking). The samples stay on the model's device as contiguous tensors and are scored
    in ``torch.inference_mode`` in batches of ``batch_size``. Results are kept
    in an LRU cache of ``cache_size`` masks (0 disables it); ``hits``/``misses``
    count its use. A miss that agrees with the mask scored before it on groups
    ``0..l-1`` starts from the cached activations at the cut before group ``l``
    and runs only the rest of the network (the compact network's prefix cache:
    same scores, bit for bit; at most ``prefix_cache_bytes`` of activations, 0
    disables it; ``prefix_hits`` counts the forward passes that used it). With ``recalibration_x`` (training images), every candidate's
    BatchNorm statistics are re-estimated on them before scoring (adaptive BN,
    see :mod:`prune_gym.pruning.batchnorm`); the original model is left unchanged.
    """

    def __init__(
        self,
        network: PrunableNetwork,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 100,
        cache_size: int = 4096,
        method: Literal["compact", "masked"] = "compact",
        recalibration_x: torch.Tensor | None = None,
        metric: str = "accuracy",
        prefix_cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if method not in EVALUATION_METHODS:
            raise ValueError(f"unknown evaluation method {method!r}; choose one of {list(EVALUATION_METHODS)}")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"need the same positive number of samples and labels, got {len(x)} and {len(y)}")
        batch_size = check_int("batch_size", batch_size, 1, "a positive number of images per batch")
        if recalibration_x is not None and not batchnorm_layers(network.model):
            raise ValueError(f"{type(network.model).__name__} has no BatchNorm layer: BatchNorm recalibration does not apply to it")
        device = next(network.model.parameters()).device
        self.network = network
        self.recalibration_x = None if recalibration_x is None else recalibration_x.to(device).contiguous()
        self.x = x.to(device).contiguous()
        self.y = y.to(device).contiguous()
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.method = method
        self.metric = get_metric(metric)
        self.prefix_cache_bytes = prefix_cache_bytes
        self._compact = CompactNetwork(network, prefix_cache_bytes) if method == "compact" else None
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._earlier_prefix_hits = 0

    @property
    def prefix_hits(self) -> int:
        """Forward passes (batches, calibration passes) that started from the prefix cache's activations."""
        return self._earlier_prefix_hits + (self._compact.prefix_hits if self._compact is not None else 0)

    def clear(self) -> None:
        """Empty the cache (the hit and miss counters keep counting)."""
        self._cache.clear()

    def reload(self) -> None:
        """Take up the network's current weights (after training it) and empty the cache."""
        if self._compact is not None:
            self._earlier_prefix_hits += self._compact.prefix_hits
            self._compact = CompactNetwork(self.network, self.prefix_cache_bytes)
        self.clear()

    def cache_entries(self) -> list[tuple[str, float]]:
        """The cached (mask key in hex, score) pairs, least recently used first: what a checkpoint keeps so that a resumed
        search counts (and re-scores) exactly what an uninterrupted one would."""
        return [(key.hex(), value) for key, value in self._cache.items()]

    def restore_cache(self, entries: list[tuple[str, float]]) -> None:
        """Refill the cache with :meth:`cache_entries` (the counters are not changed)."""
        self._cache = OrderedDict((bytes.fromhex(key), float(value)) for key, value in entries[-self.cache_size:] if self.cache_size)

    def remember(self, keep: KeepMask, value: float) -> None:
        """Cache ``value`` as the score of ``keep`` if it is not cached (a resumed search's recorded episodes)."""
        key = self._key(keep)
        if self.cache_size > 0 and key not in self._cache:
            self._cache[key] = value
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    @staticmethod
    def _key(keep: KeepMask) -> bytes:
        return np.packbits(np.concatenate([np.asarray(m, dtype=bool) for m in keep])).tobytes()

    def score(self, keep: KeepMask) -> float:
        """The metric of the network pruned by ``keep`` on the samples (accuracy: the fraction classified correctly)."""
        key = self._key(keep)
        if key in self._cache:
            self.hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self.misses += 1
        value = self._evaluate(keep)
        if self.cache_size > 0:
            self._cache[key] = value
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return value

    def _evaluate(self, keep: KeepMask) -> float:
        if self._compact is not None:
            model = self._compact.load(keep)
            with self._recalibrated(model):
                return evaluate(model, self.x, self.y, self.metric, self.batch_size)
        model = self.network.model
        was_training = model.training
        model.eval()
        self.network.apply_masks(keep)
        try:
            with self._recalibrated(model):
                return evaluate(model, self.x, self.y, self.metric, self.batch_size)
        finally:
            self.network.remove_masks()
            model.train(was_training)

    def _recalibrated(self, model: torch.nn.Module) -> AbstractContextManager:
        if self.recalibration_x is None:
            return nullcontext(model)
        return recalibrated(model, self.recalibration_x)
