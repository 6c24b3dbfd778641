"""Where the work runs when it outgrows one process: a Ray cluster (the optional `cluster` extra).

`Cluster` connects this process to one (`local` starts it here, `auto` joins a running one,
`ray://host:port` reaches a remote one); its `runner()` renders chunks on the workers
(`render.chunks`). Nothing outside this package imports Ray.
"""

from smartfocus.cluster.connect import CLUSTER_ENV, Cluster, cluster_address
from smartfocus.cluster.runner import RayRunner

__all__ = ["CLUSTER_ENV", "Cluster", "RayRunner", "cluster_address"]
