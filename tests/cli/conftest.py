"""The lifecycle lab (containers on a busybox root directory) for the CLI format tests."""

from tests.lifecycle.conftest import busybox_lower, lifecycle  # noqa: F401  (fixtures)
