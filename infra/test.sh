#!/usr/bin/env bash
# The project's whole check, as CI runs it: formatting, lints, every test against a private
# moto server on a free loopback port, and the SAM template lint. Exits non-zero on any failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash infra/venv.sh test

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# moto accepts any credentials; fixed dummy ones keep real ones away from the tests.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL

port="$(.venv/bin/python -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')"
mkdir -p .local
pidfile="$repo_root/.local/moto-test-$port.pid"
trap 'bash infra/moto.sh stop "$pidfile"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash infra/moto.sh start "$port" "$pidfile"

MOTO_ENDPOINT="http://127.0.0.1:$port" cargo test --workspace

.venv/bin/cfn-lint template.yaml
echo "template.yaml: cfn-lint passed"
