"""A three-node nats-server cluster on loopback: distinct client and route ports, one JetStream store per node."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import psutil

from worker.embedded import NatsServer, free_port

__all__ = ["NatsCluster"]

_CONFIG = """\
server_name: {name}
cluster {{
  name: reliability
  listen: 127.0.0.1:{route_port}
  routes: [{routes}]
}}
"""


class NatsCluster:
    """Three `NatsServer`s routed to each other; `node_named` and `node_serving` find the one to kill."""

    def __init__(self, size: int = 3) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="agent-worker-cluster-"))
        route_ports = [free_port() for _ in range(size)]
        routes = ", ".join(f"nats://127.0.0.1:{port}" for port in route_ports)
        self.names = [f"n{i + 1}" for i in range(size)]
        self.nodes: list[NatsServer] = []
        for name, route_port in zip(self.names, route_ports, strict=True):
            config = self.root / f"{name}.conf"
            config.write_text(_CONFIG.format(name=name, route_port=route_port, routes=routes))
            store = self.root / f"{name}-store"
            store.mkdir()
            self.nodes.append(NatsServer(store_dir=store, config_file=config))

    @property
    def urls(self) -> str:
        """The seed list a client is given: every node."""
        return ",".join(node.url for node in self.nodes)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        return self

    def node_named(self, name: str) -> NatsServer:
        return self.nodes[self.names.index(name)]

    def node_serving(self, pid: int) -> NatsServer:
        """The node process `pid` holds its client connection to (read from the process's own sockets)."""
        ports = {node.port: node for node in self.nodes}
        for connection in psutil.Process(pid).net_connections(kind="tcp"):
            remote: Any = connection.raddr
            if remote and remote.port in ports and connection.status == psutil.CONN_ESTABLISHED:
                return ports[remote.port]
        raise LookupError(f"process {pid} has no connection to any node")

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        shutil.rmtree(self.root, ignore_errors=True)
