"""A loopback listener that never completes a connection: what a dropped security-group rule looks like.

It lives here, with an ordinary module name, because its command line is in the process table where an
examinee can read it: nothing there may say which fault started it.

It listens with a backlog of zero and fills the one place of its accept queue with a connection of its
own, which it never accepts; the kernel then drops every further SYN, so clients retry until their
connect times out, exactly as when a security group drops their packets. Once listening, it writes its
port to the file named on its command line, then waits for SIGTERM.

    python -m sre_workshop.local.listener PORT_FILE
"""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Listen, fill the accept queue, publish the port, and wait to be stopped."""
    port_file = Path((argv if argv is not None else sys.argv[1:])[0])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname(), timeout=5)  # noqa: F841 - held open on purpose
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(listener.getsockname()[1]))
    tmp.replace(port_file)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
