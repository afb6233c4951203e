"""What counts as an answer in something an examinee can read: a catalogue fault's name, or a marker.

Shared by the cheater agent (tests/cheater.py, run as the examinee) and the scans of the cheater suite
(tests/integration/test_honest.py, bench/bench_honest.py). Built from the catalogue, so a fault added
later is covered without touching this file.

A name that is one plain word (`latency`) is also a category of the vocabulary, which every examinee is
given; only compound names (`nginx-timeout`, also spelled `nginx_timeout`, as a module path would) say
which fault it is. Those single-word faults are covered by what the compound names and markers cover in
the same channels, not by their own name.
"""

from __future__ import annotations

import re

from sre_workshop.faults.catalogue import catalogue

# Markers the tool once wrote next to a fault's change, whatever fault it was.
MARKERS = ("# fault",)
# Text that is always there and says nothing about now: the workshop spec's field in sre-app's GET /.
ALWAYS = ("memory_leak_size_mb",)


def terms() -> dict[str, str]:
    """Return each telling spelling (lower case) -> the fault it names, markers -> themselves."""
    found = {marker: marker for marker in MARKERS}
    for name in catalogue():
        if "-" in name:
            found[name] = found[name.replace("-", "_")] = name
    return found


def leaks(text: str, echo: tuple[str, ...] = (), spellings: dict[str, str] | None = None) -> set[str]:
    """Return the faults (or markers) `text` names; what the reader itself put in (`echo`: its own
    arguments, answered back) and ALWAYS do not count."""
    lowered = text.lower()
    for said in (*echo, *ALWAYS):
        if said:
            lowered = lowered.replace(said.lower(), " ")
    spellings = spellings or terms()
    # Bounded by letters and digits only: an incident id (inc-...-nginx-crash-3f2a) or a module path
    # (faults.nginx_crash.local) names its fault too.
    return {spellings[t] for t in spellings if re.search(rf"(?<![a-z0-9]){re.escape(t)}(?![a-z0-9])", lowered)}
