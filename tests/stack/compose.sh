#!/usr/bin/env bash
# `docker compose` for `make up` / `make down` on a host with podman instead of Docker
# (make up COMPOSE=tests/stack/compose.sh). Host workarounds only, none of them product changes:
# - Debian's docker-compose 1.29 against podman's Docker API stands in for Compose v2
#   (podman-compose ignores `condition: service_healthy`). 1.29 rejects the top-level `name:`,
#   so it reads STACK_COMPOSE_FILE (compose.yaml without it) under STACK_PROJECT.
# - podman runs healthchecks from systemd timers, and this host has no systemd: a loop runs
#   `podman healthcheck run` on the project's containers while this script runs.
# - 1.29 has no `up --wait`: after `up -d`, this script waits until every container of the
#   project that has a healthcheck is healthy (STACK_WAIT_SECONDS, default 180).
set -euo pipefail
: "${STACK_COMPOSE_FILE:?}" "${STACK_PROJECT:?}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
args=()
wait=0
for arg in "$@"; do
    if [[ $arg == --wait ]]; then wait=1; else args+=("$arg"); fi
done

containers() {
    podman ps --quiet --filter "label=com.docker.compose.project=$STACK_PROJECT"
}

healthchecks() {
    while true; do
        for id in $(containers); do podman healthcheck run "$id" >/dev/null 2>&1 || true; done
        sleep 1
    done
}

healthchecks &
poller=$!
trap 'kill $poller 2>/dev/null || true' EXIT

docker-compose --project-directory "$ROOT" -f "$STACK_COMPOSE_FILE" -p "$STACK_PROJECT" "${args[@]}"

if ((wait)); then
    deadline=$((SECONDS + ${STACK_WAIT_SECONDS:-180}))
    while true; do
        pending=0
        for id in $(containers); do
            # 0: the check passes; 125: the container has no healthcheck.
            rc=0
            podman healthcheck run "$id" >/dev/null 2>&1 || rc=$?
            if ((rc != 0 && rc != 125)); then pending=1; fi
        done
        ((pending)) || break
        if ((SECONDS > deadline)); then
            echo "compose.sh: containers not healthy after ${STACK_WAIT_SECONDS:-180}s" >&2
            exit 1
        fi
        sleep 1
    done
fi
