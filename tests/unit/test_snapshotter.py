"""The snapshotter interface: the overlay snapshotter implements all of it, and the diff form."""
import os
import stat

from nerdpy.engine.snapshots import snapshotter
from nerdpy.engine.snapshots.overlay import OverlaySnapshotter


def test_overlay_implements_the_protocol():
    wanted = {n for n in vars(snapshotter.Snapshotter) if not n.startswith("_")} | {"root", "driver"}
    wanted |= set(snapshotter.Snapshotter.__annotations__)
    missing = [n for n in wanted if n != "root" and not hasattr(OverlaySnapshotter, n)]
    assert missing == []
    assert OverlaySnapshotter.driver == "overlayfs"


def test_open_snapshotter_picks_the_driver(tmp_path):
    from nerdpy.engine.content.metadata import Metadata

    db = Metadata(str(tmp_path / "meta.db"))
    sn = snapshotter.open_snapshotter(str(tmp_path / "snaps"), db)
    assert isinstance(sn, OverlaySnapshotter) and sn.root == str(tmp_path / "snaps")


def test_whiteouts(tmp_path):
    p = str(tmp_path / "gone")
    snapshotter.make_whiteout(p)
    st = os.lstat(p)
    assert snapshotter.is_whiteout(st) and stat.S_ISCHR(st.st_mode)
    open(tmp_path / "file", "w").close()
    assert not snapshotter.is_whiteout(os.lstat(tmp_path / "file"))
