#!/usr/bin/env bash
# Benchmark set-up: pg_partman for the server's major version (the Debian package
# postgresql-<major>-partman), so the benchmark can compare with its partition_data_proc.
# Exit 0: available. Exit 2: not available (the benchmark then says so and skips that row).
# BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the server.
set -uo pipefail
URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

available() {
  [ "$(psql "$URL" -Atc "select count(*) from pg_available_extensions where name = 'pg_partman'" 2>/dev/null)" = "1" ]
}

if available; then
  echo "bench setup: pg_partman is available ($(psql "$URL" -Atc "select default_version from pg_available_extensions where name = 'pg_partman'"))"
  exit 0
fi
major="$(psql "$URL" -Atc "select current_setting('server_version_num')::int / 10000" 2>/dev/null)"
if [ -z "$major" ]; then
  echo "bench setup: cannot reach PostgreSQL at $URL" >&2
  exit 1
fi
pkg="postgresql-${major}-partman"
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
  echo "bench setup: pg_partman is NOT available and cannot be installed here (needs root and apt-get: apt-get install -y $pkg);" \
       "the pg_partman comparison is skipped" >&2
  exit 2
fi
echo "bench setup: installing $pkg ..."
apt-get update -qq >/dev/null 2>&1 || true
# Read the whole output first: `apt-cache policy | grep -q` under pipefail fails when grep exits
# at its first match and apt-cache dies of SIGPIPE, which reported an available package as missing.
candidate="$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
  echo "bench setup: package $pkg is NOT available from the configured apt sources; the pg_partman comparison is skipped" >&2
  exit 2
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; then
  echo "bench setup: apt-get install $pkg FAILED; the pg_partman comparison is skipped" >&2
  exit 2
fi
if available; then
  echo "bench setup: installed $pkg ($(psql "$URL" -Atc "select default_version from pg_available_extensions where name = 'pg_partman'"))"
  exit 0
fi
echo "bench setup: $pkg installed but the server does not list pg_partman (is the server major version $major?); skipped" >&2
exit 2
