#!/usr/bin/env bash
# Stand-ins for the two registry images the product files name, built here because this host
# reaches no container registry (a Docker host would pull them). Each is a Debian bookworm root
# file system from debootstrap, imported into podman under the name the product files use:
#   python:3.11-slim-bookworm  Debian's Python 3.11 (+ venv, pip), `python` on PATH
#   postgres:16                Debian's PostgreSQL 15 with an entrypoint honouring
#                              POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (deploy's tests
#                              need the interface, not the major version)
# Both trust the host's CA certificates: the package proxy this host reaches PyPI through
# presents its own CA, and pip inside the build must accept it.
# Root file systems and downloaded .debs are cached in $CACHE (outside the clone), images stay
# in podman's store: a warm run finds them and does nothing.
set -euo pipefail
CACHE=${CACHE:-/var/cache/strands-session-backend}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$CACHE"
EATMYDATA=$(command -v eatmydata || true)

rootfs() {  # rootfs NAME PACKAGES: a cached tarball of a bookworm minbase with PACKAGES
    local name=$1 packages=$2 tar="$CACHE/$1.tar"
    if [[ ! -s $tar ]]; then
        local dir
        dir=$(mktemp -d "$CACHE/$name.XXXXXX")
        mkdir -p "$CACHE/debs-$name"
        # eatmydata: dpkg's fsync calls are most of the time of a throwaway root file system.
        $EATMYDATA debootstrap --variant=minbase --cache-dir="$CACHE/debs-$name" \
            --include="$packages" bookworm "$dir" "$MIRROR" >"$CACHE/$name.debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/$name.debootstrap.log"; rm -rf "$dir"; exit 1; }
        cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
        rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
        customize_"$name" "$dir"
        tar -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
        rm -rf "$dir"
    fi
}

customize_python() {
    ln -sf /usr/bin/python3 "$1/usr/local/bin/python"
    # The official image's Python is not Debian-managed; pip may install into it.
    rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED
}

customize_postgres() {
    install -m 0755 "$HERE/postgres-entrypoint.sh" "$1/usr/local/bin/docker-entrypoint.sh"
}

image() {  # image NAME TAG CHANGES...: import the cached rootfs unless the tag exists
    local name=$1 tag=$2
    shift 2
    if ! podman image exists "$tag"; then
        local changes=()
        for change in "$@"; do changes+=(--change "$change"); done
        podman import --quiet "${changes[@]}" "$CACHE/$name.tar" "$tag" >/dev/null
    fi
}

python_base() {
    rootfs python python3,python3-venv,python3-pip,ca-certificates
    image python docker.io/library/python:3.11-slim-bookworm \
        "ENV LANG=C.UTF-8" \
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
        "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" \
        'CMD ["python3"]'
}

postgres_base() {
    rootfs postgres postgresql-15,ca-certificates
    image postgres docker.io/library/postgres:16 \
        "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "ENV PGDATA=/var/lib/postgresql/data" \
        "ENV LANG=C.UTF-8" \
        "STOPSIGNAL SIGINT" \
        "EXPOSE 5432" \
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
        'CMD ["postgres"]'
}

# `bases.sh [python] [postgres]`: the ones named (default both, built at once: most of a cold
# run's time is here).
pids=()
for base in "${@:-python postgres}"; do
    for name in $base; do
        "${name}_base" &
        pids+=($!)
    done
done
for pid in "${pids[@]}"; do wait "$pid"; done
