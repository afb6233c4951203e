"""Blank words of this process's command line, as the process table shows it to every user.

`scenario run nginx-crash --agent ...` would otherwise tell the evaluated agent, which may read any
process's command line (/proc/PID/cmdline), which fault it is looking at. Linux shows the bytes of the
process's own argument area, so overwriting them there (through /proc/self/mem, which a process may always
write) changes what everyone sees; our own sys.argv copy is untouched.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

# arg_start and arg_end, fields 48 and 49 of /proc/PID/stat, counted from the state (field 3) after "comm)".
ARG_START, ARG_END = 48 - 3, 49 - 3


def blank(words: set[str]) -> int:
    """Overwrite each argument equal to one of `words` with spaces in the process table; return how many."""
    if not words:
        return 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[ARG_START]), int(fields[ARG_END])
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            memory.seek(start)
            area = memory.read(end - start)
            args = area.split(b"\0")
            hidden = [b" " * len(a) if a.decode(errors="replace") in words else a for a in args]
            if hidden != args:
                memory.seek(start)
                memory.write(b"\0".join(hidden))
            return sum(1 for a, b in zip(args, hidden, strict=True) if a != b)
    return 0
