#!/usr/bin/env bash
# The main job on a fresh machine (as root): install, build testdata/app into the default store,
# run it detached with a published port, print the page it serves, then stop and remove it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PB=.venv/bin/pybuild
PORT=${PORT:-8080}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

.venv/bin/python testdata/busybox/make_rootfs.py "$WORK/busybox.tar"
$PB import "$WORK/busybox.tar" busybox:latest --change 'CMD ["sh"]'
$PB build -t demo-app:latest testdata/app
$PB images
cid=$($PB run -d -p "$PORT:80" --name pybuild-demo demo-app:latest)
cleanup() { $PB rm -f "$cid" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
.venv/bin/python - "$PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/"
for _ in range(50):
    try:
        print(urllib.request.urlopen(url, timeout=2).read().decode(), end="")
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"demo: nothing served at {url}")
PY
$PB stop "$cid" >/dev/null
