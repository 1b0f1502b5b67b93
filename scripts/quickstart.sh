#!/usr/bin/env bash
# Quick start with no internet and no registry mirror at hand, as root on Debian or Ubuntu:
#   1. scripts/install.sh: the runtime packages, nerdpy, shell completion;
#   2. a registry on 127.0.0.1:5000 (Debian's docker-registry) holding a busybox image built from
#      the busybox-static package, so nothing is downloaded from Docker Hub;
#   3. that registry as the docker.io mirror (scripts/install.sh --mirror, which runs nerdpy
#      doctor), so `busybox` means docker.io/library/busybox as usual;
#   4. a first container: nerdpy run --rm busybox echo "hello from a nerdpy container".
# Undo step 3 with: rm /etc/nerdpy/certs.d/docker.io/hosts.toml
# With internet or a real mirror, scripts/install.sh alone is the quick start (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "quickstart: run as root (sudo bash scripts/quickstart.sh)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
PYTHON=${PYTHON:-python3}

# options go to scripts/install.sh (e.g. --no-completion)
bash scripts/install.sh --no-doctor "$@"

need=()
for p in docker-registry skopeo umoci busybox-static curl; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "==> packages for the local registry: ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

PORT=${NERDPY_QUICKSTART_PORT:-5000}
REG=127.0.0.1:$PORT
WORK=${NERDPY_QUICKSTART_DIR:-/var/tmp/nerdpy-quickstart}
mkdir -p "$WORK"
echo "==> a registry on $REG (data in $WORK)"
if ! curl -fsS "http://$REG/v2/" >/dev/null 2>&1; then
    cat > "$WORK/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: $REG
log:
  level: error
YML
    nohup docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
    echo $! > "$WORK/registry.pid"
    for _ in $(seq 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -fsS "http://$REG/v2/" >/dev/null || { echo "quickstart: the registry did not start: $WORK/registry.log" >&2; exit 1; }
fi

if ! skopeo inspect --tls-verify=false "docker://$REG/library/busybox:latest" >/dev/null 2>&1; then
    echo "==> busybox from the busybox-static package into $REG/library/busybox"
    rm -rf "$WORK/oci" "$WORK/bundle"
    umoci init --layout "$WORK/oci"
    umoci new --image "$WORK/oci:latest"
    umoci unpack --rootless --image "$WORK/oci:latest" "$WORK/bundle" >/dev/null
    root="$WORK/bundle/rootfs"
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    umoci repack --image "$WORK/oci:latest" "$WORK/bundle" >/dev/null
    umoci config --image "$WORK/oci:latest" --config.cmd sh \
        --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin >/dev/null
    skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci:latest" "docker://$REG/library/busybox:latest"
    rm -rf "$WORK/bundle"
fi

# the docker.io mirror, unless this machine already has a docker.io hosts.toml of its own
HOSTS_DIR=$(cd / && "$PYTHON" -c 'from nerdpy.engine.config import load_settings; print(load_settings().hosts_dirs[0])')
existing="$HOSTS_DIR/docker.io/hosts.toml"
IMAGE=busybox
if [ -f "$existing" ] && ! grep -q "http://$REG\"" "$existing"; then
    echo "==> $existing exists already: left alone; the demo uses $REG/library/busybox by its full name"
    IMAGE=$REG/library/busybox
    (cd / && "$PYTHON" -m nerdpy doctor)
else
    bash scripts/install.sh --mirror "http://$REG" --no-packages --no-project --no-completion
fi

echo "==> nerdpy run --rm $IMAGE echo \"hello from a nerdpy container\""
(cd / && "$PYTHON" -m nerdpy run --rm "$IMAGE" echo "hello from a nerdpy container")
