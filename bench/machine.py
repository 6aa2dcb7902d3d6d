"""What the figures were measured on: they only mean something next to the machine and the date."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

from worker.embedded import find_nats_server

__all__ = ["Machine"]


@dataclass(frozen=True, slots=True)
class Machine:
    date: str
    cores: int
    cpu: str
    memory_gib: float
    python: str
    nats_server: str
    load: str

    @classmethod
    def describe(cls) -> Machine:
        return cls(
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            cores=os.cpu_count() or 0,
            cpu=_cpu_model(),
            memory_gib=psutil.virtual_memory().total / 2**30,
            python=f"{platform.python_implementation()} {platform.python_version()}",
            nats_server=_nats_server_version(),
            load=" ".join(f"{value:.2f}" for value in os.getloadavg()),
        )

    def markdown(self) -> str:
        return "\n".join(
            [
                f"- date: {self.date}",
                f"- cores: {self.cores} ({self.cpu})",
                f"- memory: {self.memory_gib:.1f} GiB",
                f"- Python: {self.python}",
                f"- nats-server: {self.nats_server}",
                f"- load average when the run started (1, 5, 15 min): {self.load}",
            ]
        )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _nats_server_version() -> str:
    completed = subprocess.run([str(find_nats_server()), "--version"], capture_output=True, text=True, check=False)
    return completed.stdout.strip().removeprefix("nats-server: ") or "unknown"
