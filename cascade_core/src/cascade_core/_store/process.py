"""Who holds a lease: owner tokens that name their process, and whether that process is gone.

A token is ``host:pid:start:machine:random:counter``. ``start`` is the process's start time as
the kernel counts it (clock ticks since boot, from ``/proc/PID/stat``) and ``machine`` a short
hash of the host name, boot id and pid namespace, so that a pid is only ever compared within
the process table it came from. A holder is *gone* when its token names this machine and no
process with its pid and start time exists (it died, or its pid now belongs to a newer
process). Anything else (another machine, an older token, a platform that cannot tell) counts
as alive, and its leases expire as before. docs/backends.md, "After a crash".
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import sys
from typing import NamedTuple


class Holder(NamedTuple):
    """What an owner token says of its process."""

    host: str
    pid: int
    start: int  # 0: unknown
    machine: str


def new_owner() -> str:
    """A token unique to this driver: this process's identity, a random part, a counter."""
    global _PROCESS
    pid = os.getpid()
    if _PROCESS is None or _PROCESS[0] != pid:  # first call, or a forked child
        identity = f"{socket.gethostname()}:{pid}:{start_ticks(pid) or 0}:{machine_id()}"
        _PROCESS = (pid, f"{identity}:{os.urandom(6).hex()}")
    return f"{_PROCESS[1]}:{next(_OWNERS)}"


_PROCESS: tuple[int, str] | None = None
_OWNERS = itertools.count()


def driver_name() -> str:
    """This driver as run info and task records name it: ``host <hostname> pid <pid>``."""
    return f"host {socket.gethostname()} pid {os.getpid()}"


def parse_owner(token: str) -> Holder | None:
    """The process a token names; None for tokens of another form (``~shared``, older drivers)."""
    parts = token.split(":")
    if len(parts) != 6 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return Holder(parts[0], int(parts[1]), int(parts[2]), parts[3])


def gone(token: str) -> Holder | None:
    """The holder named by ``token`` when it is a process of this machine that no longer runs."""
    holder = parse_owner(token)
    if holder is None or holder.machine != machine_id() or holder.pid == os.getpid() or sys.platform == "win32":
        return None
    start = start_ticks(holder.pid)
    if start is None:  # no /proc: only a missing pid tells
        return None if _exists(holder.pid) else holder
    if start <= 0:  # no such process, or a zombie (killed, not yet reaped by its parent)
        return holder
    return holder if holder.start and start != holder.start else None  # a newer process has the pid


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (ticks since boot); 0 when there is no such process, -1 for a zombie,
    None where there is no /proc to tell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return 0 if os.path.isdir("/proc/self") else None  # 0: no such process
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return -1
    return int(fields[19])  # field 22 of stat(5); the first two (pid, comm) are cut off above


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def machine_id() -> str:
    """Eight hex digits naming this host's process table (host name, boot, pid namespace)."""
    global _MACHINE
    if _MACHINE is None:
        parts = [socket.gethostname()]
        try:
            with open("/proc/sys/kernel/random/boot_id") as boot:
                parts.append(boot.read().strip())
            parts.append(os.readlink("/proc/self/ns/pid"))
        except OSError:
            pass
        _MACHINE = hashlib.blake2b("\0".join(parts).encode(), digest_size=4).hexdigest()
    return _MACHINE


_MACHINE: str | None = None
