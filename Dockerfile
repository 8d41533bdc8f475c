# The pybuild image: pybuild in a venv on Debian's python3, run as an unprivileged user (uid 1000)
# with subordinate id ranges, for builds inside an unprivileged container or a Kubernetes pod
# (docs/PODBUILD.md). Build it with pybuild (or any builder):
#   pybuild build -t pybuild:latest .
# Behind a TLS-intercepting proxy, give pip its CA as a build secret (never in a layer):
#   pybuild build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt -t pybuild:latest .
ARG BASE=debian:bookworm-slim
FROM ${BASE}

# uidmap: newuidmap/newgidmap map the user's subordinate ranges into the build's user namespace. In a
# container without CAP_SYS_ADMIN a setuid-root newuidmap cannot write the map (euid 0 is not the
# namespace's owner); with file capabilities instead it keeps the user's euid (as podman's own images do).
# git: build contexts given as git URLs (pybuild kube build-job --context URL) are fetched in the container
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv uidmap libcap2-bin ca-certificates git \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && chmod 0755 /usr/bin/newuidmap /usr/bin/newgidmap \
    && setcap cap_setuid=ep /usr/bin/newuidmap \
    && setcap cap_setgid=ep /usr/bin/newgidmap

# pybuild and its dependencies from the context (bound for this step only; rw: pip writes build files
# beside the sources, into a throw-away layer)
RUN --mount=type=bind,target=/src,rw \
    --mount=type=secret,id=pip-ca \
    python3 -m venv /opt/pybuild \
    && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && /opt/pybuild/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && /opt/pybuild/bin/python -m compileall -q /opt/pybuild >/dev/null

# the unprivileged user; its subordinate ranges stay within 65536 ids (as podman's own images do), so
# they fit a pod that runs in a user namespace of its own (hostUsers: false) as well as a plain one
RUN useradd --uid 1000 --user-group --create-home --shell /bin/sh pybuild \
    && printf 'pybuild:1:999\npybuild:1001:64535\n' > /etc/subuid \
    && cp /etc/subuid /etc/subgid \
    && mkdir -p /home/pybuild/.local/share/pybuild \
    && chown -R pybuild:pybuild /home/pybuild/.local

ENV PATH=/opt/pybuild/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER pybuild
WORKDIR /home/pybuild
# the store: overlay cannot use the container's own (overlay) root as an upper dir
VOLUME ["/home/pybuild/.local/share/pybuild"]
ENTRYPOINT ["pybuild"]
CMD ["--help"]
