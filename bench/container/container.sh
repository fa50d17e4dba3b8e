#!/usr/bin/env bash
# Build bogv's image from the Dockerfile as users do, run it, and check it over HTTP: on a
# machine with Debian's podman and no reachable image registry (this project's dev machines).
#
#   bench/container/container.sh            # all steps below, in order
#   bench/container/container.sh build      # or one step: base, build, single, compose
#
# 1. base: docker.io/library/python:3.11-slim made here, since it cannot be pulled: Debian
#    bookworm (debootstrap --variant=minbase) with python3, python3-venv, python-is-python3
#    and ca-certificates, plus this machine's CA bundle (pip's TLS may go through the
#    machine's own authority) named by PIP_CERT; `podman import`ed under the real name.
#    Made once: kept while that image exists.
# 2. build: `podman build --pull=never` of the Dockerfile (bogv:latest), and of the Milvus
#    stand-in bench/container/milvus.Dockerfile (PyPI `milvus` 2.3.5).
# 3. single: one bogv container, port published on 127.0.0.1, on the host's Milvus server
#    BOGV_TEST_MILVUS_URI (default http://127.0.0.1:19530; a scratch server: the check uses
#    its own collection and drops it), reached through slirp4netns's host loopback.
# 4. compose: docker-compose.yml under podman-compose with bench/container/compose.override.yml
#    (the stand-in instead of etcd/MinIO/milvusdb/Attu, in the compose network) and its
#    two bogv replicas (profile `replicas`), which share the record volume and the image
#    folder: one picture left in the start-up import folder, add through one replica,
#    search through both.
# Every check is bench/container/check.py: HTTP only, exit 1 on the first wrong answer.
#
# Needs root, `apt-get install podman runc debootstrap` and `pip install podman-compose`
# (1.1+, for compose's !reset/!override tags). podman runs with its own containers.conf
# (CONTAINERS_CONF): default_ulimits = [] (a sandbox may refuse to raise rlimits) and the
# runc runtime (crun fails on some cgroup v1 layouts). Environment: BOGV_CT_STATE (default
# /var/tmp/bogv-container: the conf, the compose run's folders), DEBIAN_MIRROR, PODMAN_COMPOSE.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${BOGV_CT_STATE:-/var/tmp/bogv-container}
BASE=docker.io/library/python:3.11-slim
IMAGE=localhost/bogv:latest
MILVUS_IMAGE=localhost/bogv-milvus-pypi:2.3.5
MILVUS_URI=${BOGV_TEST_MILVUS_URI:-http://127.0.0.1:19530}
COMPOSE=${PODMAN_COMPOSE:-podman-compose}
RUN_ID=ct$$
CHECK=(--no-healthcheck -v "$REPO/bench/container:/check:ro" "$IMAGE" python /check/check.py)

mkdir -p "$STATE"
export CONTAINERS_CONF=$STATE/containers.conf
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
EOF

say() { printf '\n== %s (load %s)\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)"; }
# podman 4.3 without systemd cannot time health checks and says so for each container that
# has one; `podman healthcheck run` still works, and the script uses that.
no_timer_noise() { grep -v 'unable to get systemd connection' >&2 || true; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

host_ca_bundle() {
  local f
  for f in "${PIP_CERT:-}" "$(pip config get global.cert 2>/dev/null || true)" \
           "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    [[ -n $f && -f $f ]] && { echo "$f"; return; }
  done
  echo "no CA bundle found on this machine" >&2; return 1
}

step_base() {
  say "base: $BASE"
  if podman image exists "$BASE"; then echo "   present (made before, or pulled): kept"; return; fi
  local root=$STATE/rootfs ca t=$SECONDS
  ca=$(host_ca_bundle)
  rm -rf "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$STATE/debootstrap.log" \
    || { tail -20 "$STATE/debootstrap.log" >&2; return 1; }
  cp "$ca" "$root/etc/ssl/certs/host-ca-bundle.crt"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | podman import -q --change 'ENV=LANG=C.UTF-8' \
    --change 'ENV=PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt' --change 'CMD=["python3"]' - "$BASE" \
    > /dev/null
  rm -rf "$root"
  echo "   base: $((SECONDS - t)) s"
}

build_image() {  # TAG LOG ARGS...: podman build as users would, its output in LOG
  local tag=$1 log=$2 t=$SECONDS
  shift 2
  # --format docker keeps the HEALTHCHECK (OCI images have none), as `docker build` does.
  podman build --pull=never --format docker -t "$tag" "$@" > "$log" 2>&1 \
    || { tail -30 "$log" >&2; return 1; }
  echo "   $tag: $((SECONDS - t)) s"
}

step_build() {
  say "build: $IMAGE from the Dockerfile, $MILVUS_IMAGE from bench/container/milvus.Dockerfile"
  build_image "$IMAGE" "$STATE/build.log" "$REPO"
  build_image "$MILVUS_IMAGE" "$STATE/build-milvus.log" \
    -f "$REPO/bench/container/milvus.Dockerfile" "$REPO/bench/container"
  podman image ls --format '   {{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"
}

single_cleanup() {
  podman rm -f -v "bogv-$RUN_ID" > /dev/null 2>&1 || true
  podman run --rm --network host --no-healthcheck -v "$REPO/bench/container:/check:ro" \
    "$IMAGE" python /check/drop.py "$MILVUS_URI" "$RUN_ID" 2>/dev/null | sed 's/^/   /' || true
}

step_single() {
  [[ $MILVUS_URI =~ ^http://(127\.0\.0\.1|localhost):([0-9]+)$ ]] \
    || { echo "BOGV_TEST_MILVUS_URI must be http://127.0.0.1:PORT, not $MILVUS_URI" >&2; return 1; }
  local port milvus_port=${BASH_REMATCH[2]} t=$SECONDS
  port=$(free_port)
  say "single: $IMAGE on 127.0.0.1:$port, Milvus $MILVUS_URI, collection $RUN_ID"
  trap single_cleanup EXIT
  podman run -d --name "bogv-$RUN_ID" -p "127.0.0.1:$port:7000" \
    --network slirp4netns:allow_host_loopback=true \
    -e MILVUS_URI="http://10.0.2.2:$milvus_port" -e COLLECTION="$RUN_ID" "$IMAGE" \
    > /dev/null 2> >(no_timer_noise)
  if ! podman run --rm --network host "${CHECK[@]}" --prefix "$RUN_ID" \
      --add "http://127.0.0.1:$port" --search "http://127.0.0.1:$port" | sed 's/^/   /'; then
    podman logs --tail 30 "bogv-$RUN_ID" >&2; return 1
  fi
  podman healthcheck run "bogv-$RUN_ID" > /dev/null \
    || { echo "the image's HEALTHCHECK failed on a serving container" >&2; return 1; }
  echo "   HEALTHCHECK: healthy"
  single_cleanup; trap - EXIT
  echo "   single: $((SECONDS - t)) s"
}

step_compose() {
  local dir=$STATE/compose-$RUN_ID project=bogv-$RUN_ID port1 port2 t=$SECONDS
  port1=$(free_port); port2=$(free_port)
  [[ $port1 != "$port2" ]] || port2=$(free_port)
  say "compose: standalone stand-in + bogv (127.0.0.1:$port1) + bogv-2 (127.0.0.1:$port2)"
  command -v "$COMPOSE" > /dev/null || { echo "no $COMPOSE: pip install podman-compose" >&2; return 1; }
  export API_PORT=$port1 API_PORT_2=$port2 DOCKER_VOLUME_DIRECTORY=$dir IMAGES_DIR=$dir/images
  local compose=("$COMPOSE" -p "$project" -f "$REPO/docker-compose.yml"
                 -f "$REPO/bench/container/compose.override.yml" --profile replicas)
  # shellcheck disable=SC2064  # expand now: the trap must clean this run's project and folder
  trap "${compose[*]} down -v > /dev/null 2>&1; rm -rf '$dir'" EXIT
  # As the README asks of users: the folder of the start-up import, writable by uid 10001.
  mkdir -p "$dir/images/incoming" "$dir/images/pool" "$dir/volumes"
  chown -R 10001:10001 "$dir/images"
  podman run --rm --user 10001 -v "$dir/images:/images" "${CHECK[@]}" \
    --write-import /images/incoming/startup.png
  "${compose[@]}" up -d standalone > "$dir/up.log" 2>&1
  local ok=""
  for _ in $(seq 90); do
    podman healthcheck run "${project}_standalone_1" > /dev/null 2>&1 && { ok=1; break; }
    sleep 2
  done
  [[ -n $ok ]] || { podman logs --tail 30 "${project}_standalone_1" >&2; return 1; }
  echo "   Milvus stand-in healthy after $((SECONDS - t)) s"
  "${compose[@]}" up -d bogv bogv-2 >> "$dir/up.log" 2>&1
  podman ps --filter "label=io.podman.compose.project=$project" \
    --format '   {{.Names}} {{.Status}} {{.Ports}}'
  if ! podman run --rm --network host "${CHECK[@]}" --prefix "$RUN_ID" \
      --add "http://127.0.0.1:$port1" --search "http://127.0.0.1:$port2" \
      --search "http://127.0.0.1:$port1" --imported /images/pool/startup.png | sed 's/^/   /'; then
    podman logs --tail 30 "${project}_bogv_1" >&2; podman logs --tail 30 "${project}_bogv-2_1" >&2
    return 1
  fi
  [[ -f $dir/images/pool/startup.png && ! -e $dir/images/incoming/startup.png ]] \
    || { echo "startup.png was not moved from incoming/ to pool/" >&2; return 1; }
  echo "   startup.png moved from images/incoming to images/pool"
  "${compose[@]}" down -v > /dev/null 2>&1; rm -rf "$dir"; trap - EXIT
  echo "   compose: $((SECONDS - t)) s"
}

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(base build single compose)
for s in "${steps[@]}"; do
  case $s in
    base|build|single|compose) "step_$s" ;;
    *) echo "unknown step $s (base, build, single, compose)" >&2; exit 2 ;;
  esac
done
say "all passed: ${steps[*]} in $SECONDS s"
