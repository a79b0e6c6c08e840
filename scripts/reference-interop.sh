#!/usr/bin/env bash
# The reference client's integration suite against every example of this project (issue 14: the
# classic form still interoperates). Not run by CI: it needs a checkout of the reference
# implementation, which is never part of this repository.
#
#   git clone https://github.com/jasoncolburne/better-auth-ts /tmp/ref
#   scripts/reference-interop.sh /tmp/ref [target …]
#
# Targets (Makefile targets, each started in turn on a free port with a new SQLite database):
# server example-express example-koa example-nestjs example-nestjs-fastify example-fetch
# example-node (default: all). For each, the reference client's suite
# (`npx vitest run src/tests/integration.test.ts` in the checkout) runs against it; one line per
# target with its passed / failed counts, then the exit code is 1 if any test failed or a target
# did not start.
#
# The reference suite sends to http://localhost:8080, hard-coded: a module preloaded into its test
# processes (NODE_OPTIONS=--import) sends those requests to the target's URL instead, so nothing
# in the checkout is changed and port 8080 may be in use. `npm install` runs in the checkout when
# it has no node_modules. Logs stay in the directory printed at the end.
set -uo pipefail

ref=${1:?usage: scripts/reference-interop.sh REFERENCE_CHECKOUT [target …]}
shift
ref=$(cd "$ref" && pwd) || exit 2
root=$(cd "$(dirname "$0")/.." && pwd)
suite=src/tests/integration.test.ts
if [ ! -f "$ref/$suite" ]; then
  echo "$ref has no $suite: not a checkout of better-auth-ts" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(server example-express example-koa example-nestjs example-nestjs-fastify example-fetch
    example-node)
fi

if [ ! -d "$ref/node_modules" ]; then
  (cd "$ref" && npm install --no-audit --no-fund) || exit 1
fi
# Our own dependencies, once, before any target starts (make would install them otherwise).
make -C "$root" setup >/dev/null || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/reference-interop.XXXXXX")
cat >"$work/base-url.mjs" <<'EOF'
// Sends the reference suite's requests for http://localhost:8080 to BETTER_AUTH_URL.
const target = process.env.BETTER_AUTH_URL?.replace(/\/+$/, '')
const FIXED = 'http://localhost:8080'
if (target) {
  const original = globalThis.fetch
  globalThis.fetch = (input, init) =>
    original(
      typeof input === 'string' && input.startsWith(FIXED)
        ? target + input.slice(FIXED.length)
        : input,
      init
    )
}
EOF

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

server_pgid=
stop_server() {
  if [ -n "$server_pgid" ]; then
    kill -TERM -- "-$server_pgid" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 -- "-$server_pgid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$server_pgid" 2>/dev/null
    server_pgid=
  fi
}
trap stop_server EXIT

failures=0
printf '%-24s %7s %7s %7s\n' target passed failed total
for target in "${targets[@]}"; do
  port=$(free_port)
  url="http://127.0.0.1:$port"
  log="$work/$target.server.log"
  # Its own process group, so the whole tree (make, tsx, node) stops together.
  setsid env PORT="$port" HOST=127.0.0.1 BETTER_AUTH_DATABASE="sqlite:$work/$target.db" \
    make -C "$root" --no-print-directory "$target" >"$log" 2>&1 &
  server_pgid=$!
  up=0
  for _ in $(seq 1 300); do
    if curl -fsS -m 1 -X POST "$url/key/response" >/dev/null 2>&1; then
      up=1
      break
    fi
    kill -0 "$server_pgid" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$up" -ne 1 ]; then
    printf '%-24s %7s %7s %7s  (did not start: %s)\n' "$target" - - - "$log"
    failures=$((failures + 1))
    stop_server
    continue
  fi
  report="$work/$target.json"
  (cd "$ref" && BETTER_AUTH_URL="$url" NODE_OPTIONS="--import $work/base-url.mjs" \
    npx vitest run "$suite" --reporter=verbose --reporter=json --outputFile.json="$report") \
    >"$work/$target.client.log" 2>&1
  stop_server
  counts=$(node -e "
    try {
      const r = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'))
      console.log(r.numPassedTests, r.numFailedTests, r.numTotalTests)
    } catch { console.log('- - -') }" "$report")
  read -r passed failed total <<<"$counts"
  note=
  if [ "$passed" = - ] || [ "$failed" != 0 ] || [ "$total" = 0 ]; then
    failures=$((failures + 1))
    note="  (see $work/$target.client.log)"
  fi
  printf '%-24s %7s %7s %7s%s\n' "$target" "$passed" "$failed" "$total" "$note"
done
echo "logs: $work"
[ "$failures" -eq 0 ]
