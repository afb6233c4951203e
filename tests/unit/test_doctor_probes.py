"""doctor's local probes name why nothing answered, over real loopback sockets."""

from __future__ import annotations

import socket
import threading

from sre_workshop.diagnose.local.probes import failure, probe
from sre_workshop.local.process import free_port


def test_nothing_listening_is_refused():
    assert probe("nginx", "nginx /", f"http://127.0.0.1:{free_port()}/").error == "refused"


def test_a_server_that_closes_before_answering_is_a_reset():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def hang_up() -> None:
            conn, _ = listener.accept()
            conn.recv(1024)
            conn.close()  # the request was read, no answer: a process that died mid-request

        threading.Thread(target=hang_up, daemon=True).start()
        found = probe("sre-app", "sre-app /", f"http://127.0.0.1:{listener.getsockname()[1]}/")
    assert (found.status, found.error) == (0, "reset")


def test_a_name_that_does_not_resolve_is_dns_not_refused():
    assert failure(socket.gaierror(-2, "Name or service not known")) == "dns"
    assert failure(TimeoutError()) == "timeout" and failure(OSError("no route")) == "unreachable"
