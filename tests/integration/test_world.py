"""The fixtures themselves, checked with skopeo only (independent of nerdpy)."""
import json
import subprocess

import pytest


def test_images_are_what_they_claim(images):
    m = json.loads(images.raw_manifest(images.busybox))
    assert m.get("mediaType", "application/vnd.oci.image.manifest.v1+json") == "application/vnd.oci.image.manifest.v1+json"
    assert m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert len(m["layers"]) == 1
    m = json.loads(images.raw_manifest(images.busybox_v2s2))
    assert m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    m = json.loads(images.raw_manifest(images.zstd))
    assert m["layers"][0]["mediaType"].endswith("+zstd")
    m = json.loads(images.raw_manifest(images.layered))
    assert len(m["layers"]) == 2
    idx = json.loads(images.raw_manifest(images.multiarch))
    archs = sorted(d["platform"]["architecture"] for d in idx["manifests"])
    assert archs == ["amd64", "arm64", "unknown"]


def test_auth_registry_refuses_anonymous(auth_registry):
    anon = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{auth_registry.image}"],
                          capture_output=True, text=True)
    assert anon.returncode != 0
    ok = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                         "--creds", f"{auth_registry.username}:{auth_registry.password}",
                         f"docker://{auth_registry.image}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
