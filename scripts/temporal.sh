#!/usr/bin/env bash
# Runs the Temporal CLI this project provisions: a pinned version built once from its Go module
# (no binary download needed, only the Go module proxy) and cached outside git.
#   scripts/temporal.sh <args>     run the CLI (npm run temporal -- <args>)
#   scripts/temporal.sh --ensure   build it if missing and print its path
# TEMPORAL_CLI_PATH overrides the binary; PS_CACHE_DIR the cache folder.
set -euo pipefail

VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
CACHE="${PS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/partition-switchover}"
BIN="${TEMPORAL_CLI_PATH:-$CACHE/temporal-$VERSION/temporal}"

ensure() {
  [ -x "$BIN" ] && return 0
  command -v go >/dev/null || { echo "temporal.sh: Go is needed to build the Temporal CLI $VERSION (or set TEMPORAL_CLI_PATH)" >&2; exit 1; }
  local dir; dir="$(dirname "$BIN")"
  mkdir -p "$dir"
  echo "temporal.sh: building Temporal CLI $VERSION into $dir (once, about 3 minutes)..." >&2
  if ! GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@$VERSION" >&2; then
    # A module whose go.mod has replace directives refuses `go install m@v`: build inside its source.
    echo "temporal.sh: go install refused; building from the downloaded module source" >&2
    local src; src="$(go mod download -json "github.com/temporalio/cli@$VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    (cd "$src" && go build -o "$BIN" ./cmd/temporal) >&2
  fi
  [ -x "$BIN" ] || { echo "temporal.sh: build finished but $BIN is missing" >&2; exit 1; }
}

if [ "${1:-}" = "--ensure" ]; then
  ensure
  echo "$BIN"
  exit 0
fi
ensure
exec "$BIN" "$@"
