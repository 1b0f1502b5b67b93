#!/usr/bin/env bash
# The whole test suite on a Debian or Ubuntu machine, as root, set up first: the Debian packages
# nerdpy and its tests need, then this checkout with its test extras (pip of the active python3,
# a virtualenv's too), then pytest. Every set-up step is skipped when its work is already done, so
# a second run starts pytest at once. README.md's "Running the tests" and CI (.ci/run) run this.
#
#   bash scripts/test.sh                      # everything under tests/
#   bash scripts/test.sh -k pull              # pytest's arguments pass through
#   bash scripts/test.sh tests/unit -q        # so do paths
#
# What the tests need, one list each (add a line there, not here):
#   Debian packages    TEST_PACKAGES in scripts/install.sh (--with-test-tools installs them)
#   Python packages    the `test` extra in pyproject.toml
# A test skipped because something is missing (a tool, root) fails the run here, as in CI, with a
# line saying what to install (tests/skipcheck.py). Environment:
#   NERDPY_ALLOW_SKIPS=1   let such skips pass (a quick unit-only run as a user)
#   NERDPY_TEST_SETUP=0    skip the set-up, run pytest only
#   PYTHON                 the interpreter (default python3)
# pytest's exit status is this script's; "no tests collected" (pytest's 5) is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
export PYTHON
# options of scripts/install.sh for the set-up: packages and project only
INSTALL_ARGS=(--with-test-tools --no-completion --no-doctor)

say() { echo "==> $*"; }

if [ "${NERDPY_TEST_SETUP:-1}" = 0 ]; then
    :
elif [ "$(id -u)" = 0 ]; then
    say "set-up: scripts/install.sh ${INSTALL_ARGS[*]}"
    bash scripts/install.sh "${INSTALL_ARGS[@]}"
else
    echo "test.sh: not root: set-up skipped (as root it installs what the tests need;" \
         "the integration tests need root too)" >&2
fi

if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
    echo "test.sh: pytest is not installed for $PYTHON: run as root (sudo bash scripts/test.sh)," \
         "or: $PYTHON -m pip install -e '.[test]'" >&2
    exit 1
fi

# skips for a missing tool fail the run unless NERDPY_ALLOW_SKIPS says otherwise
export NERDPY_TEST_STRICT=${NERDPY_TEST_STRICT:-1}
# -q unless the arguments choose a verbosity of their own
quiet=(-q)
for a in "$@"; do
    case "$a" in -q*|-v*|--quiet|--verbose|--verbosity*) quiet=() ;; esac
done
say "$PYTHON -m pytest$(printf ' %q' ${quiet[@]+"${quiet[@]}"} "$@")"
set +e
"$PYTHON" -m pytest ${quiet[@]+"${quiet[@]}"} "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: failing" >&2
    exit 1
fi
exit "$rc"
