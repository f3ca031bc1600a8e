#!/usr/bin/env bash
# Build, test, pack and run a local Pegasus cluster. ./run.sh help lists the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export PATH="/usr/local/go/bin:$PATH"

usage() {
  cat <<'USAGE'
Usage: ./run.sh <command> [options]

Commands:
  help             show this help
  build            build pegasus_server and pegasus_shell into ./bin
  test             run the test suite (go vet, unit and integration tests, race detector)
USAGE
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  help|-h|--help) usage ;;
  build) make build ;;
  test) make test ;;
  *) echo "unknown command: $cmd" >&2; usage >&2; exit 2 ;;
esac
