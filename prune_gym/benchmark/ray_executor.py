"""The Ray back-end of the executors: every run a Ray task with declared resources, on this machine or a cluster.

``RayExecutor("local")`` starts a Ray instance on this machine, bound to the
loopback address; ``RayExecutor("HOST:PORT")`` (or ``ray://HOST:PORT``,
``auto``) joins a running cluster. Each job is a Ray task asking for
``cpus_per_run`` CPUs (its torch threads) and ``gpus_per_run`` GPUs (its device
becomes the ``cuda:k`` Ray assigned); Ray runs a task whose worker died again
(``max_retries``, Ray's retry of system failures: the run resumes from its
crash-safe folder), and a task lost on every try is reported by
:func:`~prune_gym.benchmark.executors.lost_result`. Run folders are written
where the jobs say: on a cluster, a path every node sees (shared or synced
storage).

Ray is imported here only, when a session starts: ``import prune_gym.cli``
never imports it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prune_gym.benchmark.executors import MAX_RETRIES, check_retries, limit_threads, lost_result
from prune_gym.validation import check_int, check_real

LOCAL = "local"


@contextlib.contextmanager
def ray_session(address: str = LOCAL, num_cpus: int | None = None, runtime_env: dict[str, Any] | None = None) -> Iterator[Any]:
    """The ``ray`` module, connected: to the session this process already has, else to a new one; a new one is shut down after.

    Args:
        address: ``"local"``: start an instance on this machine with ``num_cpus`` CPUs (default: all
            cores), reachable on 127.0.0.1 only; else a running cluster's address (``HOST:PORT``,
            ``ray://HOST:PORT``, ``auto``).
        num_cpus: CPUs of a local instance (refused with an address: a cluster has its own).
        runtime_env: Ray's runtime environment for the workers (``env_vars``, ``working_dir``, ...).
    """
    if not isinstance(address, str) or not address:
        raise ValueError(f"invalid Ray address {address!r}: expected 'local' or a cluster's HOST:PORT")
    if address != LOCAL and num_cpus is not None:
        raise ValueError(f"num_cpus={num_cpus} applies to a local Ray instance only: the cluster at {address} has its own CPUs")
    check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address == LOCAL:
        # Ray otherwise replaces 127.0.0.1 by the address it routes to a public DNS server with; this keeps every socket on loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require_ray()

    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "runtime_env": runtime_env}
    from ray._private import ray_constants

    clusters = ray_constants.ENABLE_RAY_CLUSTER
    if address == LOCAL:
        # The variable set above is read when ray is first imported, and tianshou imports ray on its own import: set
        # what it controls directly, for this session (workers are new processes and read the variable).
        ray_constants.ENABLE_RAY_CLUSTER = False
        ray.init(address=LOCAL, num_cpus=num_cpus, _node_ip_address="127.0.0.1", **options)
    else:
        ray.init(address=address, **options)
    try:
        yield ray
    finally:
        ray.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = clusters


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse, within ``timeout`` seconds, a cluster address nothing listens on (Ray itself retries for minutes, then
    names another address); ``local`` and ``auto`` are not checked."""
    if address in (LOCAL, "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"invalid Ray address {address!r}: expected HOST:PORT, ray://HOST:PORT, auto or local")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ValueError(f"no Ray cluster answers at {address} ({error.strerror or error}): start one there "
                         "(`ray start --head`) or give its address") from None


def require_ray() -> Any:
    """The ``ray`` module, or a one-line ValueError saying how to install it (the optional extra ``prune_gym[ray]``)."""
    try:
        import ray
        import ray.tune
    except ImportError:
        raise ValueError("Ray is not installed (it runs --ray and `prune-gym tune`): pip install 'prune_gym[ray]'") from None
    return ray


def assigned_cuda_device(gpu_ids: Sequence[int | str], visible_devices: str | None) -> str:
    """The torch device of the first GPU Ray assigned to this task: its index among ``CUDA_VISIBLE_DEVICES``.

    Ray narrows ``CUDA_VISIBLE_DEVICES`` to the task's GPUs (so this is usually
    ``cuda:0``); where it does not, the GPU's own id is the index.
    """
    if not gpu_ids:
        raise RuntimeError("Ray assigned this task no GPU although it asked for one")
    first = str(gpu_ids[0])
    visible = [device.strip() for device in visible_devices.split(",")] if visible_devices else []
    return f"cuda:{visible.index(first) if first in visible else first}"


def check_resources(cpus_per_run: float, gpus_per_run: float) -> None:
    """One-line ValueErrors for resources a Ray task cannot ask for."""
    check_real("cpus_per_run", cpus_per_run, 0.0, math.inf, low_open=True, high_open=True, expected="a positive number of CPUs per run")
    check_real("gpus_per_run", gpus_per_run, 0.0, math.inf, high_open=True,
               expected="a number of GPUs per run >= 0 (a fraction shares one)")


def check_cluster_fits(ray: Any, cpus_per_run: float, gpus_per_run: float) -> None:
    """Refuse runs that no node of the connected cluster could ever start (Ray would wait for them forever)."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if not any(node.get("CPU", 0) >= cpus_per_run and node.get("GPU", 0) >= gpus_per_run for node in nodes):
        largest: dict[str, float] = max(nodes, key=lambda node: (node.get("GPU", 0), node.get("CPU", 0)), default={})
        raise ValueError(f"no Ray node has {cpus_per_run:g} CPUs and {gpus_per_run:g} GPUs for a run (the largest has "
                         f"{largest.get('CPU', 0):g} CPUs and {largest.get('GPU', 0):g} GPUs): lower --cpus-per-run / --gpus-per-run")


def granted_device(gpus: float) -> str | None:
    """In a Ray worker: the ``cuda:k`` device Ray granted this task, or None when it asked for no GPU."""
    import ray

    return assigned_cuda_device(ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")) if gpus > 0 else None


def _run_placed(function: Callable[[Any], Any], job: Any, cpus: float, gpus: float) -> Any:
    """The Ray task: ``function`` on ``job``, with torch limited to the CPUs granted and on the GPU granted (if any)."""
    limit_threads(max(1, int(cpus)))
    device = granted_device(gpus)
    return function(job if device is None else job.on_device(device))


class RayExecutor:
    """Each job a Ray task asking for ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs, at most ``max_in_flight`` at once.

    ``address`` is ``"local"`` (a Ray instance on this machine with ``num_cpus``
    CPUs, default all cores) or a cluster's address; a task whose worker dies is
    retried ``max_retries`` times by Ray, then reported as a failed run.
    """

    def __init__(self, address: str = LOCAL, cpus_per_run: float = 1, gpus_per_run: float = 0, max_in_flight: int | None = None,
                 num_cpus: int | None = None, max_retries: int = MAX_RETRIES, runtime_env: dict[str, Any] | None = None) -> None:
        check_resources(cpus_per_run, gpus_per_run)
        if max_in_flight is not None:
            check_int("max_in_flight", max_in_flight, 1, "a positive number of runs at once")
        self.address, self.num_cpus, self.runtime_env = address, num_cpus, runtime_env
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.max_in_flight = max_in_flight
        self.max_retries = check_retries(max_retries)

    def run(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        with ray_session(self.address, self.num_cpus, self.runtime_env) as ray:
            check_cluster_fits(ray, self.cpus_per_run, self.gpus_per_run)
            task = ray.remote(_run_placed).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                                   max_retries=self.max_retries, retry_exceptions=False)
            queue = list(reversed(jobs))
            running: dict[Any, Any] = {}
            try:
                while queue or running:
                    while queue and len(running) < (self.max_in_flight or len(queue) + len(running)):
                        job = queue.pop()
                        running[task.remote(function, job, self.cpus_per_run, self.gpus_per_run)] = job
                    [ready], _ = ray.wait(list(running), num_returns=1)
                    job = running.pop(ready)
                    try:
                        result = ray.get(ready)
                    except ray.exceptions.RayError as error:  # the worker died on every try, or the task was cancelled
                        result = lost_result(job, error)
                    yield job, result
            except BaseException:
                for reference in running:
                    ray.cancel(reference, force=True)
                raise
