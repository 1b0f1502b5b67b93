#!/usr/bin/env bash
# Quick start on a fresh Debian/Ubuntu machine, as root:
#   installs the runtime pieces and nerdpy, starts a local registry on 127.0.0.1:5000 holding a
#   busybox image built from busybox-static (no internet needed), then pulls it with nerdpy and
#   runs a first container.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then echo "quickstart: run as root" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
need=()
for p in runc containernetworking-plugins iptables docker-registry skopeo umoci busybox-static curl; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m pip install -q -e . 2>/dev/null || python3 -m pip install -q --break-system-packages -e .

PORT=${NERDPY_QUICKSTART_PORT:-5000}
REG=127.0.0.1:$PORT
WORK=/var/tmp/nerdpy-quickstart
mkdir -p "$WORK"
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
    for _ in $(seq 50); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! skopeo inspect --tls-verify=false "docker://$REG/library/busybox:latest" >/dev/null 2>&1; then
    rm -rf "$WORK/oci" "$WORK/bundle"
    umoci init --layout "$WORK/oci"
    umoci new --image "$WORK/oci:latest"
    umoci unpack --rootless --image "$WORK/oci:latest" "$WORK/bundle" >/dev/null
    root="$WORK/bundle/rootfs"
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for a in sh true false echo cat ls sleep env id ps wc head mkdir rm touch hostname top nc wget ip grep sed printf test date kill ping httpd tr; do
        ln -sf busybox "$root/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    umoci repack --image "$WORK/oci:latest" "$WORK/bundle" >/dev/null
    umoci config --image "$WORK/oci:latest" --config.cmd sh \
        --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin >/dev/null
    skopeo copy -q --dest-tls-verify=false "oci:$WORK/oci:latest" "docker://$REG/library/busybox:latest"
fi

nerdpy pull "$REG/library/busybox:latest"
nerdpy images
nerdpy run --rm "$REG/library/busybox:latest" echo "hello from a nerdpy container"
