# A stand-in for milvusdb/milvus, made from the PyPI `milvus` package (Milvus standalone
# 2.3.5: bundled binaries, embedded etcd, local storage; no MinIO). Only for
# bench/container/container.sh, on machines that cannot pull the real images; docker-compose.yml's
# users run milvusdb/milvus with etcd and MinIO.
FROM docker.io/library/python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/milvus \
 && /opt/milvus/bin/pip install "milvus==2.3.5"
COPY milvus_server.py /opt/milvus/
VOLUME ["/var/lib/milvus"]
EXPOSE 19530 9091
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/opt/milvus/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9091/healthz', timeout=4)"]
CMD ["/opt/milvus/bin/python", "/opt/milvus/milvus_server.py"]
