#!/usr/bin/env bash
# Build the web console (console/ → console/dist), served by `flywheel serve` at /.
#
#   bash scripts/build_console.sh          # skips when dist is newer than every source
#   bash scripts/build_console.sh --force  # always rebuild
#
# Needs Node.js 20+ and npm (dependencies pinned in console/package-lock.json, installed with
# `npm ci`). Idempotent: safe to run on every start-up or in CI.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
console="$root/console"
dist="$console/dist"
force="${1:-}"

if ! command -v npm >/dev/null 2>&1; then
  echo "build_console: npm not found; install Node.js 20+ (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

sources=(
  "$console/src" "$console/index.html" "$console/package.json" "$console/package-lock.json"
  "$console/vite.config.ts" "$console/tsconfig.json"
)

if [[ "$force" != "--force" && -f "$dist/index.html" ]]; then
  newer="$(find "${sources[@]}" -newer "$dist/index.html" -print -quit 2>/dev/null || true)"
  if [[ -z "$newer" ]]; then
    echo "build_console: console/dist is up to date"
    exit 0
  fi
fi

cd "$console"
# npm ci reinstalls from the lock; skip it when node_modules already matches the lock.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
npm run build
# vite keeps the sources' mtimes out of dist: stamp index.html so the check above holds.
touch "$dist/index.html"
echo "build_console: built $dist"
