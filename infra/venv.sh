#!/usr/bin/env bash
# Creates the project's Python environment (.venv in the repository root) and installs the
# requirements of one profile: `test` (moto, cfn-lint) or `run` (test plus cargo-lambda).
# Installs only when the requirements changed since the last install of that profile.
set -euo pipefail

profile="${1:-test}"
case "$profile" in
  test | run) ;;
  *)
    echo "usage: $0 [test|run]" >&2
    exit 2
    ;;
esac

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
infra="$repo_root/infra"
requirements="$infra/requirements-$profile.txt"
stamp="$venv/.stamp-$profile"

# A venv left half-made by an interrupted run has a python but no pip: make it again.
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -f "$venv"/.stamp-*
  python3 -m venv --clear "$venv" || {
    echo "failed to create $venv: python3 with the venv module is required" >&2
    exit 1
  }
fi

# The run profile includes the test requirements, so both files decide whether it is current.
digest() {
  case "$1" in
    test) cat "$infra/requirements-test.txt" ;;
    run) cat "$infra/requirements-test.txt" "$infra/requirements-run.txt" ;;
  esac | sha256sum | cut -d' ' -f1
}
wanted="$(digest "$profile")"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$venv/bin/python" -m pip install --quiet --requirement "$requirements"
echo "$wanted" >"$stamp"
# The run profile installs everything the test profile needs, so that one is current too.
if [[ "$profile" == run ]]; then
  digest test >"$venv/.stamp-test"
fi
