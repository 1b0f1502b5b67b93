"""commit's pieces: `--change` instructions, the container's settings as image config, and the
upper dir written back as a layer tar with docker's whiteouts (round-tripped through apply_layer)."""
import gzip
import io
import os
import stat
import tarfile

import pytest

from nerdpy.engine.snapshots.apply import apply_layer
from nerdpy.engine.images.commit import apply_changes, container_config, write_diff
from nerdpy.engine.errors import InvalidArgument


def test_apply_changes():
    base = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Labels": {"k": "v"}, "WorkingDir": "/srv"}
    cfg = apply_changes(base, [
        'CMD ["echo", "x"]', "ENV A=2 B='two words'", "ENV C legacy form", "LABEL a=b \"c d\"=e",
        "EXPOSE 80 53/udp 8000-8001", "VOLUME /data /logs", 'VOLUME ["/x"]', "WORKDIR app", "USER nobody",
        "STOPSIGNAL SIGINT", "ONBUILD RUN true", "entrypoint /bin/sh -c 'exec x'",
    ])
    assert cfg["Cmd"] == ["echo", "x"]  # CMD came first: ENTRYPOINT keeps it
    assert cfg["Env"] == ["PATH=/bin", "A=2", "B=two words", "C=legacy form"]
    assert cfg["Labels"] == {"k": "v", "a": "b", "c d": "e"}
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp"}
    assert set(cfg["Volumes"]) == {"/data", "/logs", "/x"}
    assert cfg["WorkingDir"] == "/srv/app" and cfg["User"] == "nobody" and cfg["StopSignal"] == "SIGINT"
    assert cfg["OnBuild"] == ["RUN true"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/sh -c 'exec x'"]
    assert base["Cmd"] == ["sh"]  # the input is not changed
    assert apply_changes(base, ["ENTRYPOINT [\"/bin/x\"]"])["Cmd"] is None
    assert apply_changes({}, ["CMD echo hi"])["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    for bad in ("RUN true", "FROM x", "ENV", "EXPOSE 99999", "EXPOSE 80/xyz", "STOPSIGNAL NOPE"):
        with pytest.raises(InvalidArgument):
            apply_changes({}, [bad])


class C:
    def __init__(self, spec):
        from nerdpy.engine.containers.records import StoredSpec

        self.spec = StoredSpec.from_json(spec)


def test_container_config_merges_run_settings():
    img = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Labels": {"i": "1"}, "ExposedPorts": {"80/tcp": {}}}
    cfg = container_config(C({"_image_config": img, "env": ["A=2", "B=3"], "cmd": ["sleep", "1"],
                              "labels": {"c": "2"}, "user": "app", "workdir": "/w",
                              "mounts": [{"type": "volume", "target": "/v", "options": {"anonymous": True}}]}))
    assert cfg["Env"] == ["PATH=/bin", "A=2", "B=3"] and cfg["Cmd"] == ["sleep", "1"]
    assert cfg["Labels"] == {"i": "1", "c": "2"} and cfg["User"] == "app" and cfg["WorkingDir"] == "/w"
    assert cfg["Volumes"] == {"/v": {}} and cfg["ExposedPorts"] == {"80/tcp": {}}
    cfg = container_config(C({"_image_config": img, "entrypoint": ["/x"], "cmd": None}))
    assert cfg["Entrypoint"] == ["/x"] and cfg["Cmd"] is None


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts and trusted xattrs need root")
def test_write_diff_turns_overlay_whiteouts_into_docker_form(tmp_path):
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    os.mknod(upper / "etc" / "group", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (upper / "home").mkdir()
    os.setxattr(upper / "home", "trusted.overlay.opaque", b"y")
    (upper / "home" / "new.txt").write_text("fresh\n")
    (upper / "added.txt").write_text("added\n")
    os.link(upper / "added.txt", upper / "hard.txt")
    os.symlink("added.txt", upper / "link")
    os.setxattr(upper / "added.txt", "user.note", b"\xff\x00binary")
    buf = io.BytesIO()
    write_diff(str(upper), buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert set(members) == {"added.txt", "etc", "etc/.wh.group", "hard.txt", "home", "home/.wh..wh..opq",
                            "home/new.txt", "link"}
    assert members["hard.txt"].islnk() and members["hard.txt"].linkname == "added.txt"
    assert members["link"].issym() and members["etc/.wh.group"].isreg()
    assert not any(k.startswith("SCHILY.xattr.trusted.") for m in members.values() for k in m.pax_headers)
    # applying it gives the overlay form back
    out = tmp_path / "applied"
    out.mkdir()
    apply_layer(str(out), io.BytesIO(gzip.compress(buf.getvalue())))
    st = os.lstat(out / "etc" / "group")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(out / "home", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(out / "added.txt", "user.note") == b"\xff\x00binary"
    assert (out / "home" / "new.txt").read_text() == "fresh\n"
