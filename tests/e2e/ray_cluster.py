"""A two-node Ray cluster on loopback only, for tests/e2e/test_ray.py: `python tests/e2e/ray_cluster.py PORT DIR`
starts a head (GCS on 127.0.0.1:PORT) and a second node, one CPU and one (declared) GPU each, prints the address
and runs until SIGTERM (then both nodes stop with it; its process group holds every Ray process).

Why not `ray start`: on Linux Ray takes the host's outward address for a node even when given
`--node-ip-address 127.0.0.1` (it resolves loopback to the interface that reaches the network), and then serves on
all interfaces. Its one-machine mode (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) keeps every address and listener on
127.0.0.1, but `ray start` refuses a second node in that mode; so the nodes are started here as `ray start` and
ray.cluster_utils start theirs, through ray._private.node.Node. Every client of the cluster (the tests' children,
offline-bench, vLLM's engine core) needs the same variable, or it turns 127.0.0.1:PORT into the outward address.
"""

from __future__ import annotations

import os
import signal
import sys

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def main(port: int, temp_dir: str) -> None:
    os.environ.update(LOOPBACK_ENV)  # before Ray is imported: it reads them at import
    from ray._private.node import Node
    from ray._private.parameter import RayParams

    common = {"num_cpus": 1, "num_gpus": 1, "temp_dir": temp_dir, "object_store_memory": 150 * 2**20,
              "min_worker_port": 0, "max_worker_port": 0}
    head = Node(RayParams(gcs_server_port=port, include_dashboard=False, **common), head=True,
                shutdown_at_exit=True, spawn_reaper=True)
    Node(RayParams(gcs_address=head.gcs_address, include_log_monitor=False, node_manager_port=0, **common),
         head=False, shutdown_at_exit=True, spawn_reaper=True)
    print(head.gcs_address, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit handlers stop the nodes' processes
    while True:
        signal.pause()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
