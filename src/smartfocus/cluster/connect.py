"""This process's connection to a Ray cluster: started here, joined, or reached remotely."""

from __future__ import annotations

import os
from types import TracebackType

from smartfocus.cluster.runner import RayRunner
from smartfocus.errors import SmartfocusError

CLUSTER_ENV = "SMARTFOCUS_CLUSTER"
LOCAL_OBJECT_STORE_BYTES = 512 << 20  # chunks pass segments of a few MB; Ray's default is 30% of RAM


class ClusterError(SmartfocusError):
    """The cluster cannot be reached, or Ray is not installed."""


def cluster_address(flag: str | None) -> str | None:
    """The cluster to use: `--cluster`, else `$SMARTFOCUS_CLUSTER`; None (or "") for none."""
    address = flag if flag is not None else os.environ.get(CLUSTER_ENV)
    return address or None


def _is_host_port(address: str) -> bool:
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit()


class Cluster:
    """A connection to a Ray cluster, a context manager; Ray allows one per process.

    Args:
        address: `local` starts Ray on this machine with its cores (or `num_cpus`), listening on
            loopback only; `auto` joins the cluster a `ray start` on this machine belongs to;
            `HOST:PORT` joins the cluster whose head is there (what `ray start --head` prints) as
            one of its nodes would; `ray://host:port` reaches a remote cluster through Ray Client.
        num_cpus: a local cluster's worker slots (default: every core).
    """

    def __init__(self, address: str, *, num_cpus: int | None = None) -> None:
        if not (address in ("local", "auto") or address.startswith("ray://") or _is_host_port(address)):
            raise ClusterError(f"cluster {address!r}: use local, auto, HOST:PORT or ray://HOST:PORT")
        self.address = address
        self.num_cpus = num_cpus
        self._connected = False

    def connect(self) -> Cluster:
        """Start or join the cluster (a few seconds)."""
        if self.address == "local":
            # Read by Ray at import: a cluster for this machine alone, its servers on loopback
            # (and no usage statistics sent anywhere).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
        except ImportError:
            raise ClusterError("Ray is not installed; pip install 'smartfocus[cluster]'") from None
        if ray.is_initialized():
            raise ClusterError("this process is already connected to a Ray cluster")
        options: dict[str, object] = {"log_to_driver": False}
        if self.address == "local":
            options |= {
                "address": "local",
                "num_cpus": self.num_cpus,
                "include_dashboard": False,
                "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
                "_node_ip_address": "127.0.0.1",
            }
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ClusterError(f"cannot connect to the Ray cluster at {self.address}: {error}") from None
        self._connected = True
        return self

    def workers(self) -> int:
        """CPU slots across the cluster: how many chunks run at once."""
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def runner(self, **options: int) -> RayRunner:
        """Runs chunks on the cluster's workers (see `RayRunner` for `options`)."""
        if not self._connected:
            raise ClusterError("connect to the cluster first")
        return RayRunner.connected(**options)

    def close(self) -> None:
        """Disconnect (a `local` cluster stops; the workers' processes end)."""
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False

    def __enter__(self) -> Cluster:
        return self.connect()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
