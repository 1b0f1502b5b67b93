"""Docker-compatibility cases as a rootless user, in the normal suite (issue 18): a representative
handful of the docker-behaviour tests, collected here again with the `nerdpy` runner running as a
throwaway rootless user (the module's `as_rootless_user` mark; tests/conftest.py), and the README's
quick start (busybox from a Docker Hub mirror, the hello-compose app) as that user. The same
test functions, unchanged: what passes for root passes for a user.

The whole docker-compatibility set runs as a user with NERDPY_TEST_ROOTLESS=1 (README, "Running
the tests"); tests needing what a user cannot have are marked `needs_root` there."""
from __future__ import annotations

import pytest

from test_container_cmds import test_attach_tty_detach_keys_and_exit_code, test_top  # noqa: F401
from test_containers import (  # noqa: F401
    bb,
    test_detached_lifecycle,
    test_exec,
    test_healthcheck,
    test_restart_on_failure_counts,
    test_run_prints_output_and_passes_exit_code,
    test_sig_proxy_forwards_sigterm,
    test_tty_through_a_pty,
)
from test_fresh_machine import fresh, install, mirror, test_readme_compose_example  # noqa: F401
from test_run_flags import test_cap_add_drop, test_pid_host_container_and_expose, test_tmpfs_flag  # noqa: F401
from test_volumes import test_new_volume_is_filled_from_the_image  # noqa: F401

pytestmark = pytest.mark.as_rootless_user


@pytest.fixture
def tmp_path(rootless_user, request):
    """The test's own files where the user can reach them (pytest's temp root is root's, 0700)."""
    return rootless_user.test_dir(request.node.name)


def test_readme_quick_start_busybox(fresh, mirror):
    """`nerdpy run --rm busybox echo hello` as the user, busybox from the machine's mirror."""
    r = install(fresh, "--mirror", f"http://{mirror.host}", "--no-packages", "--no-project", "--no-completion",
                "--no-doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    r = fresh("run", "--rm", "busybox", "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
