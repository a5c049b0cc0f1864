#!/usr/bin/env bash
# Runs the whole backend locally: moto for DynamoDB, SQS and EventBridge, the provider
# simulator, and every function behind one HTTP base URL (see infra/local-stack).
# Ports: MOTO_PORT (4566), HTTP_PORT (3000), SIM_PORT (4010).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

MOTO_PORT="${MOTO_PORT:-4566}"
HTTP_PORT="${HTTP_PORT:-3000}"
SIM_PORT="${SIM_PORT:-4010}"

bash infra/venv.sh run
export PATH="$repo_root/.venv/bin:$PATH"

# moto accepts any credentials; fixed dummy ones keep real ones away from the local stack.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE

pidfile="$repo_root/.local/moto-$MOTO_PORT.pid"
started_moto=false
cleanup() {
  if [[ "$started_moto" == true ]]; then
    bash infra/moto.sh stop "$pidfile"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$MOTO_PORT/moto-api/"; then
  echo "using the moto server already answering on port $MOTO_PORT"
else
  bash infra/moto.sh start "$MOTO_PORT" "$pidfile"
  started_moto=true
  echo "moto started on port $MOTO_PORT (log: .local/moto-$MOTO_PORT.log)"
fi

cargo run -p local-stack -- \
  --moto-endpoint "http://127.0.0.1:$MOTO_PORT" \
  --http-port "$HTTP_PORT" \
  --sim-port "$SIM_PORT"
