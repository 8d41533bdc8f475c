#!/usr/bin/env bash
# Install what pybuild and its tests need on a fresh Debian 12 machine (as root):
# Debian packages (the peers and services the tests start), then a virtualenv in .venv
# with pybuild installed editable. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# busybox-static: the base image; docker-registry + apache2-utils: the registries the tests start;
# skopeo, umoci, runc: interop peers; podman, buildah: benchmark peers; iptables: outbound NAT
# (the network tests probe it themselves and fail if pybuild does not find it); libseccomp2: the filter.
APT_PACKAGES=(
  busybox-static docker-registry apache2-utils
  skopeo umoci runc podman buildah
  iproute2 iptables libseccomp2 debootstrap python3-venv
)

if [ "$(id -u)" = 0 ]; then
  missing=()
  # the signing tests run the Sigstore project's verifier (@sigstore/verify from npm) with node: Debian's
  # nodejs + npm unless a node with npm is already installed (nodesource's nodejs bundles npm and
  # conflicts with Debian's npm package)
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then APT_PACKAGES+=(nodejs npm); fi
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "install.sh: not root; skipping apt packages (pybuild needs root to build and run)" >&2
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "install.sh: need Python >= 3.11" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# editable_mode=compat: a .pth line naming this checkout, not setuptools' import-hook finder, which
# costs every pybuild start (and shim) ~20 ms of imports (pathlib, importlib.util) before main runs
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" --config-settings editable_mode=compat
# bytecode for the installed (editable) packages: every pybuild start, shim and init reads it
# instead of compiling (PYTHONDONTWRITEBYTECODE may be set, which stops Python writing it lazily)
.venv/bin/python -m compileall -q -j 0 layers registry_client runner builder compose pybuild >/dev/null
