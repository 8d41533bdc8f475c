#!/usr/bin/env python3
"""Rootless pybuild next to rootless podman, as the same non-root user, in the same run.

Usage (as root): bench/rootless.py --user NAME [--pybuild PATH] [-n 10]

NAME must exist with subordinate ranges (``usermod --add-subuids ... --add-subgids ...``); PATH is a
pybuild that user can execute (default: the rootless tests' venv, /var/tmp/pybuild-rootless/venv).
Both tools get a fresh store and a fresh XDG_RUNTIME_DIR in a temp dir owned by the user, import the
busybox root filesystem (testdata/busybox/make_rootfs.py), then repeat: a ``build --no-cache`` of a
one-RUN Dockerfile, ``run --rm --network none IMG true``, and the cycle ``run -d`` + ``stop -t 0`` +
``rm``. Prints the median of each and the resident size of each tool's pause process. At the end the
pause processes (from their pid files) are killed and the temp dir is removed.
"""

from __future__ import annotations

import statistics

from _users import PAUSE_FILES, parse_args, user_work


def main() -> None:
    args = parse_args(rounds=10)
    with user_work(args.user, "pbrb-") as w:
        ctx = w.dir / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM bb\nRUN echo hi > /hi && chown 1000:1000 /hi\n")
        w.give(ctx, ctx / "Dockerfile")
        tools = {"pybuild": w.pybuild(args.pybuild), "podman": w.podman()}
        for name, base in tools.items():
            w.timed(base + ["import", str(w.tar), "bb"])
        results: dict[str, dict[str, list[float]]] = {t: {"build": [], "run --rm": [], "run-d+stop+rm": []}
                                                      for t in tools}
        for i in range(args.n):
            for name, base in tools.items():
                net = ["--network", "none"]
                results[name]["build"].append(w.timed(base + ["build", "--no-cache", "-q",
                                                              *([] if name == "pybuild" else net),
                                                              "-t", f"app{i}", str(ctx)])[0])
                results[name]["run --rm"].append(w.timed(base + ["run", "--rm", *net, "bb", "true"])[0])
                t0, cid = w.timed(base + ["run", "-d", *net, "bb", "sleep", "1000"])
                t1, _ = w.timed(base + ["stop", "-t", "0", cid])
                t2, _ = w.timed(base + ["rm", cid])
                results[name]["run-d+stop+rm"].append(t0 + t1 + t2)
        print(f"rootless, user {args.user}, {args.n} rounds (median):")
        for step in ("build", "run --rm", "run-d+stop+rm"):
            cells = "   ".join(f"{t} {statistics.median(results[t][step]) * 1000:7.1f} ms" for t in tools)
            print(f"  {step:<14} {cells}")
        for name in tools:
            try:
                with open(f"/proc/{w.pause_pid(name)}/status") as f:
                    rss = next(l.split()[1] for l in f if l.startswith("VmRSS:"))
                print(f"  pause process  {name} {rss} KiB")
            except (OSError, StopIteration):
                print(f"  pause process  {name}: not found at {w.xdg / PAUSE_FILES[name]}")


if __name__ == "__main__":
    main()
