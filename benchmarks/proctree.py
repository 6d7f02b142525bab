"""Resident memory and CPU time of a whole process tree, sampled from ``/proc`` (Linux).

``resource.getrusage`` reports the largest single child, not the sum, and misses grandchildren
that are still running; an ingest is a tree (the flow process, Prefect's temporary server, the
fork server, the extraction workers), so :class:`TreeSampler` walks ``/proc`` every ``interval_s``
and keeps the largest sum of RSS it saw, and each process's last CPU time, by role.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    rss: int  # bytes
    cpu_s: float  # user + system
    cmdline: str


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[1])  # after "pid (comm) state "


def read_proc(pid: int) -> ProcInfo | None:
    """One process's parent, RSS and CPU time, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    return ProcInfo(
        pid=pid,
        ppid=int(fields[1]),
        rss=int(statm[1]) * PAGE,
        cpu_s=(int(fields[11]) + int(fields[12])) / TICKS,
        cmdline=cmd.replace(b"\0", b" ").decode(errors="replace"),
    )


def tree(root: int) -> list[ProcInfo]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = defaultdict(list)
    for d in os.listdir("/proc"):
        if d.isdigit() and (ppid := _ppid(int(d))) is not None:
            children[ppid].append(int(d))
    pids = [root]
    for pid in pids:
        pids.extend(children.get(pid, []))
    return [p for pid in pids if (p := read_proc(pid))]


def role(p: ProcInfo, root: int) -> str:
    """What a process in an ingest tree is, for the CPU table."""
    if p.pid == root:
        return "flow process"
    if "uvicorn" in p.cmdline and "prefect" in p.cmdline:
        return "prefect server"
    if "forkserver" in p.cmdline or "multiprocessing" in p.cmdline:
        return "extraction workers"
    return "other"


@dataclass
class TreeSampler:
    """Samples a process tree in a thread while it runs: ``with TreeSampler(pid) as s: ...``."""

    root: int
    interval_s: float = 0.1
    peak_rss: int = 0
    peak_rss_by_role: dict[str, int] = field(default_factory=dict)
    cpu_by_pid: dict[int, tuple[str, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        procs = tree(self.root)
        self.peak_rss = max(self.peak_rss, sum(p.rss for p in procs))
        by_role: dict[str, int] = defaultdict(int)
        for p in procs:
            # an exited process (a zombie until reaped) has no cmdline: keep the role seen before
            known = self.cpu_by_pid.get(p.pid)
            r = known[0] if known and not p.cmdline else role(p, self.root)
            self.cpu_by_pid[p.pid] = (r, p.cpu_s)
            by_role[r] += p.rss
        for r, rss in by_role.items():
            self.peak_rss_by_role[r] = max(self.peak_rss_by_role.get(r, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds by role, as last seen (a process that ended is counted to its last
        sample, so up to ``interval_s`` of its CPU may be missing)."""
        out: dict[str, float] = defaultdict(float)
        for r, cpu in self.cpu_by_pid.values():
            out[r] += cpu
        return {r: round(s, 1) for r, s in sorted(out.items())}

    def __enter__(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


__all__ = ["ProcInfo", "TreeSampler", "read_proc", "tree"]
