#!/usr/bin/env python3
"""Run one fuzz target under atheris (coverage-guided) for a bounded time.

    .venv/bin/python fuzz/run.py TARGET [--seconds 60] [--corpus DIR]

The corpus starts from :mod:`fuzz.seeds`; a crashing input is written to
``testdata/fuzz/<TARGET>/crash-<sha1>``, where ``tests/fuzz/test_replay.py`` replays it in every
normal test run from then on (so a fix gets its regression test by keeping the file).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--corpus", default=None, help="corpus directory (default: a fresh temp dir)")
    args = ap.parse_args()

    import atheris

    import importlib

    from fuzz.targets import MODULES, TARGETS

    with atheris.instrument_imports(include=["layers", "builder"]):
        for name in MODULES:
            importlib.import_module(name)
    from fuzz.seeds import seeds

    if args.target not in TARGETS:
        raise SystemExit(f"unknown target {args.target!r}; targets: {', '.join(sorted(TARGETS))}")
    target = TARGETS[args.target]
    corpus = Path(args.corpus or tempfile.mkdtemp(prefix=f"pybuild-fuzz-{args.target}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds(args.target)):
        (corpus / f"seed-{i}").write_bytes(seed)
    crashes = ROOT / "testdata" / "fuzz" / args.target
    crashes.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], str(corpus), f"-max_total_time={args.seconds}", f"-artifact_prefix={crashes}/",
            "-rss_limit_mb=2048", "-timeout=20", "-print_final_stats=1"]
    os.environ.setdefault("PYBUILD_FUZZ", "1")
    atheris.Setup(argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
