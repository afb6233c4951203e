"""The README's fault catalogue table, generated from the catalogue itself so that it cannot drift.

    python -m sre_workshop.faults.readme README.md   # rewrite the table between its markers
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..vocabulary import CATEGORIES, COMPONENTS
from .catalogue import backend_module, catalogue
from .model import Fault

START, END = "<!-- fault catalogue: generated -->", "<!-- end of fault catalogue -->"


def markdown() -> str:
    """Return the catalogue as a Markdown table, then the vocabulary."""
    rows = ["| fault | ground truth (component / layer / category) | parameters (default, range) | symptom "
            "| implementation, per world |",
            "|---|---|---|---|---|"]
    for fault in catalogue().values():
        truth = fault.ground_truth(fault.defaults())
        params = "<br>".join(f"`{p.name}={p.default}` ({p.range()}){' *intensity*' if p.intensity else ''}"
                             for p in fault.params) or "-"
        load = " **Needs load.**" if fault.needs_load else ""
        component = f"the target (default {truth.component})" if "{" in fault.truth["component"] else truth.component
        rows.append(f"| `{fault.name}` | {component} / {truth.layer} / {truth.category} | {params} "
                    f"| {' '.join(fault.symptom.split())}{load} | {paths(fault)} |")
    components = ", ".join(f"`{c}` ({layer})" for c, layer in COMPONENTS.items())
    categories = ", ".join(f"`{c}`" for c in CATEGORIES)
    return "\n".join([*rows, "", f"Components (layer): {components}.", f"Categories: {categories}."])


def paths(fault: Fault) -> str:
    """Say what runs the fault in each world; a local.py kept is named with the one line that says why."""
    local = fault.path("local")
    if local == "local.py":
        why = (backend_module(fault, "local").__doc__ or "").strip().splitlines()[0]
        local = f"local.py ({why.rstrip('.')})"
    return f"AWS: {fault.path('aws')}; local: {local}"


def rewrite(text: str) -> str:
    """Return `text` with the part between the markers replaced by the current table."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{markdown()}\n{END}{tail}"


if __name__ == "__main__":
    path = Path(sys.argv[1])
    path.write_text(rewrite(path.read_text()))
