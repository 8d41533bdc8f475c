#!/usr/bin/env bash
# Install what pybuild and its tests need on a fresh Debian 12 machine (as root):
# Debian packages (the peers and services the tests start), then a virtualenv in .venv
# with pybuild installed editable. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# busybox-static: the base image; docker-registry + apache2-utils: the registries the tests start;
# skopeo, umoci, runc: interop peers; podman, buildah: benchmark peers; iptables: outbound NAT
# (the network tests probe it themselves and fail if pybuild does not find it); libseccomp2: the filter;
# qemu-user-static + binfmt-support: RUN steps and containers of other platforms (linux/arm64) under
# emulation; gcc-aarch64-linux-gnu + libc6-dev-arm64-cross: the cross-compile multi-platform test;
# git: build contexts from git URLs (builder/gitcontext.py, the one adapter that runs it);
# uidmap (newuidmap/newgidmap), passt (pasta), slirp4netns, fuse-overlayfs: rootless pybuild.
APT_PACKAGES=(
  busybox-static docker-registry apache2-utils
  skopeo umoci runc podman buildah
  iproute2 iptables libseccomp2 debootstrap python3-venv
  qemu-user-static binfmt-support gcc-aarch64-linux-gnu libc6-dev-arm64-cross git
  uidmap passt slirp4netns fuse-overlayfs
)
# the arm64 base image of the multi-platform tests: Debian's busybox-static:arm64, downloaded (not installed)
ARM64_BUSYBOX_DEB=/var/cache/pybuild-test/busybox-static_arm64.deb

if [ "$(id -u)" = 0 ]; then
  missing=()
  # the signing tests run the Sigstore project's verifier (@sigstore/verify from npm) with node: Debian's
  # nodejs + npm unless a node with npm is already installed (nodesource's nodejs bundles npm and
  # conflicts with Debian's npm package)
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then APT_PACKAGES+=(nodejs npm); fi
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # rootless user-mode networking (pasta/slirp4netns) opens /dev/net/tun as the user: 0666, as udev sets it
  if [ -c /dev/net/tun ]; then chmod 0666 /dev/net/tun; fi
  # rootless fuse-overlayfs (the overlay fallback, PYBUILD_OVERLAY=fuse-overlayfs) opens /dev/fuse: 0666, as udev sets it
  if [ -c /dev/fuse ]; then chmod 0666 /dev/fuse; fi
  if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # binfmt_misc hands arm64 programs to qemu-aarch64 (registered by qemu-user-static with the F flag,
  # so the interpreter is found inside containers too)
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || echo "install.sh: cannot mount binfmt_misc" >&2
  fi
  if [ -e /proc/sys/fs/binfmt_misc/status ] && ! grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    update-binfmts --enable qemu-aarch64 || echo "install.sh: cannot register qemu-aarch64" >&2
  fi
  if [ ! -s "$ARM64_BUSYBOX_DEB" ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || {
      dpkg --add-architecture arm64
      apt-get -o DPkg::Lock::Timeout=600 update -qq
    }
    mkdir -p "$(dirname "$ARM64_BUSYBOX_DEB")"
    tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt downloads as _apt
    if (cd "$tmp" && apt-get download -qq busybox-static:arm64 2>/dev/null) ||
       { apt-get -o DPkg::Lock::Timeout=600 update -qq && (cd "$tmp" && apt-get download -qq busybox-static:arm64); }; then
      mv "$tmp"/busybox-static_*_arm64.deb "$ARM64_BUSYBOX_DEB"
    else
      echo "install.sh: cannot download busybox-static:arm64 (the multi-platform tests will try again)" >&2
    fi
    rm -rf "$tmp"
  fi
else
  echo "install.sh: not root; skipping apt packages (pybuild needs root to build and run)" >&2
fi

# The interpreter: $PYTHON if set, else Debian's /usr/bin/python3 (built with PGO and LTO: every
# pybuild command starts 10-35% faster than under a default source build such as pyenv's, and its
# bare `python -I -S`, the shim's floor, is 0.8 MiB smaller), else the first python3 on PATH.
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
then PY=/usr/bin/python3
else PY=python3
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "install.sh: need Python >= 3.11" >&2; exit 1; }
# a venv made by another interpreter than the one chosen is made again
real='import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'
if [ -x .venv/bin/python ] && [ "$(.venv/bin/python -c "$real")" != "$("$PY" -c "$real")" ]; then
  rm -rf .venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# editable_mode=compat: a .pth line naming this checkout, not setuptools' import-hook finder, which
# costs every pybuild start (and shim) ~20 ms of imports (pathlib, importlib.util) before main runs
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]" --config-settings editable_mode=compat
# bytecode for the installed (editable) packages: every pybuild start, shim and init reads it
# instead of compiling (PYTHONDONTWRITEBYTECODE may be set, which stops Python writing it lazily)
.venv/bin/python -m compileall -q -j 0 layers registry_client runner builder compose pybuild >/dev/null
