"""Values of systemd and Quadlet unit files, escaped for what reads each section; shared by the
quadlet target and home-manager's Quadlet containers (which home-manager writes into units)."""

from __future__ import annotations

from .containers import Health
from .escape import systemd_raw, systemd_specifiers, systemd_words


class Words(tuple):
    """A value that Quadlet splits into words (Exec=, Environment=): each word is quoted."""


Entry = tuple[str, "str | Words"]  # (key, the value as the consumer must see it: not escaped yet)
Section = tuple[str, list[Entry]]  # (group name, entries)

# Sections whose values Quadlet copies into the ExecStart= of the service it generates
# (`podman run`, `podman network create`, `podman volume create`): `$` expands there too.
EXEC_SECTIONS = ("Container", "Network", "Volume")


# The first start pulls the image, and Notify=healthy waits for the healthcheck too;
# systemd's default start timeout is 90 s.
START_TIMEOUT = "900"


def health_entries(h: Health) -> list[tuple[str, str]]:
    """[Container] keys for the healthcheck (not escaped yet); Notify=healthy: the unit is
    started once it passes."""
    return [
        ("HealthCmd", h.command),
        ("HealthInterval", h.interval),
        ("HealthTimeout", h.timeout),
        ("HealthRetries", str(h.retries)),
        ("HealthStartPeriod", h.start_period),
        ("Notify", "healthy"),
    ]


def unit_value(section: str, value: "str | Words") -> str:
    """Every value of a rendered unit goes through here: escaped for what reads that section."""
    if isinstance(value, Words):
        return systemd_words(value)
    return systemd_raw(value) if section in EXEC_SECTIONS else systemd_specifiers(value)
