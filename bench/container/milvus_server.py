"""PID 1 of the stand-in Milvus container (bench/container/milvus.Dockerfile).

The `milvus` package starts its server as a child process and returns; a container needs a
foreground process that forwards the stop signal and exits with the server, so this waits
on it. Data under /var/lib/milvus (the volume docker-compose.yml gives `standalone`); the
ports are the real image's, 19530 (gRPC) and 9091 (health), inside the container's own
network namespace, so its embedded etcd's 2379/2380 meet nothing on the host.
"""
import signal
import sys

import milvus

server = milvus.MilvusServer(milvus.MilvusServerConfig(data_dir="/var/lib/milvus"),
                             wait_for_started=False, debug=True)
server.start()
signal.signal(signal.SIGTERM, lambda *_: server.server_proc.terminate())
sys.exit(server.server_proc.wait())
