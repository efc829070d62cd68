#!/usr/bin/env bash
# The project: copied from the checkout (MESH_SRC) to MESH_HOME and built there (npm ci, native
# addon, TypeScript), unless MESH_HOME is the checkout itself; meshctl and meshd go on PATH.
. "$(dirname "$0")/lib.sh"

if [ "$(cd "$MESH_SRC" && pwd -P)" != "$(mkdir -p "$MESH_HOME" && cd "$MESH_HOME" && pwd -P)" ]; then
  step "copying $MESH_SRC to $MESH_HOME"
  # Sources only: builds and tokens are per machine.
  rsync -a --delete --exclude node_modules --exclude dist --exclude native/build --exclude .vagrant \
    --exclude vagrant/.cluster --exclude .git "$MESH_SRC/" "$MESH_HOME/"
fi
cd "$MESH_HOME"

stale() {
  [ -f dist/control/daemon/main.js ] && [ -f dist/test/probe/cli.js ] || return 0
  ls native/build/Release/*.node >/dev/null 2>&1 || return 0
  [ -n "$(find control dataplane dns mesh native test bin -name '*.ts' -newer dist/control/daemon/main.js -print -quit 2>/dev/null)" ]
}
if [ "$MESH_BUILD" = 1 ] || { [ "$MESH_BUILD" = auto ] && stale; }; then
  if [ ! -f node_modules/.meshd-lock-stamp ] || ! cmp -s package-lock.json node_modules/.meshd-lock-stamp; then
    step "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.meshd-lock-stamp
  fi
  step "building (native addon + TypeScript)"
  npm run --silent build >/dev/null
else
  step "build: up to date in $MESH_HOME (MESH_BUILD=$MESH_BUILD)"
fi
[ -f dist/control/daemon/main.js ] || die "no build in $MESH_HOME"
ln -sf "$MESH_HOME/bin/meshctl.js" /usr/local/bin/meshctl
ln -sf "$MESH_HOME/bin/meshd.js" /usr/local/bin/meshd
