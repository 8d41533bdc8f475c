"""A container's health check and health as record values: :class:`HealthConfig` (``config.json``),
:class:`Health` and its probes' :class:`HealthResult` (``state.json``).

Apart from :mod:`runner.records` so that the records of containers without a check (most) do not
build these classes; :mod:`runner.records` re-exports them.
"""

from __future__ import annotations

from layers.value import frozen

__all__ = ["HealthConfig", "HealthResult", "Health", "STARTING", "HEALTHY", "UNHEALTHY"]

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"

_NS = 1_000_000_000
_HEALTH_DURATIONS = (("interval", "Interval", 30.0), ("timeout", "Timeout", 30.0),
                     ("start_period", "StartPeriod", 0.0), ("start_interval", "StartInterval", 5.0))


@frozen(slots=True)
class HealthConfig:
    """A container's health check: ``test`` is ``("CMD", argv...)`` or ``("CMD-SHELL", command)``
    (run by ``shell``, the image's SHELL); durations in seconds, 0 meaning Docker's default
    (interval and timeout 30 s, start period 0, start interval 5 s, 3 retries)."""

    test: tuple[str, ...]
    interval: float = 0.0
    timeout: float = 0.0
    start_period: float = 0.0
    start_interval: float = 0.0
    retries: int = 0
    shell: tuple[str, ...] = ("/bin/sh", "-c")

    def argv(self) -> tuple[str, ...]:
        """The probe's command line."""
        if self.test[0] == "CMD-SHELL":
            return tuple(self.shell) + (" ".join(self.test[1:]),)
        return tuple(self.test[1:])

    def effective(self, name: str) -> float:
        """A duration or ``retries`` with Docker's default in place of 0."""
        value = getattr(self, name)
        if name == "retries":
            return value or 3
        return value or next(d for n, _, d in _HEALTH_DURATIONS if n == name)

    def to_dict(self) -> dict:
        """Docker's ``Config.Healthcheck`` shape (durations in nanoseconds), with the shell."""
        d: dict = {"Test": list(self.test)}
        for attr, key, _ in _HEALTH_DURATIONS:
            if getattr(self, attr):
                d[key] = int(round(getattr(self, attr) * _NS))
        if self.retries:
            d["Retries"] = self.retries
        d["Shell"] = list(self.shell)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HealthConfig":
        kw = {attr: d.get(key, 0) / _NS for attr, key, _ in _HEALTH_DURATIONS}
        return cls(test=tuple(d["Test"]), retries=int(d.get("Retries", 0)),
                   shell=tuple(d.get("Shell") or ("/bin/sh", "-c")), **kw)


@frozen(slots=True)
class HealthResult:
    """One probe: when it ran (epoch seconds), its exit code (-1: it timed out) and output."""

    start: float
    end: float
    exit_code: int
    output: str


@frozen(slots=True)
class Health:
    """``State.Health``: ``status`` starting|healthy|unhealthy, the failing streak, the last 5 probes."""

    status: str = STARTING
    failing_streak: int = 0
    log: tuple[HealthResult, ...] = ()

    def to_dict(self) -> dict:
        return {"status": self.status, "failing_streak": self.failing_streak,
                "log": [[r.start, r.end, r.exit_code, r.output] for r in self.log]}

    def after(self, result: HealthResult, check: HealthConfig, started_at: float | None) -> "Health":
        """The health once ``result`` is in (moby's rules): a pass makes it healthy and resets the
        streak; a failure adds to the streak, except while still starting within the start period,
        and ``retries`` failures in a row make it unhealthy. The log keeps the last 5 results."""
        status, streak = self.status, self.failing_streak
        if result.exit_code == 0:
            status, streak = HEALTHY, 0
        elif not (status == STARTING and result.start - (started_at or result.start) < check.start_period):
            streak += 1
            if streak >= check.effective("retries"):
                status = UNHEALTHY
        return Health(status, streak, (self.log + (result,))[-5:])

    def stopped(self) -> "Health":
        """The health of a container that stopped: unhealthy, its log kept (as moby records it)."""
        return Health(UNHEALTHY, self.failing_streak, self.log)

    @classmethod
    def from_dict(cls, d: dict) -> "Health":
        return cls(d["status"], int(d["failing_streak"]), tuple(HealthResult(*r) for r in d["log"]))
