"""doctor's HTML page says what it could not read, escaped, and never calls that healthy."""

from __future__ import annotations

from sre_workshop.diagnose.model import Observations, Report
from sre_workshop.diagnose.report import render


def test_signals_that_could_not_be_read_are_listed_and_not_called_healthy():
    observations = Observations("2026-11-26T22:00:00+00:00", "aws",
                                unknown={"nginx instance": "cannot read its instance through SSM: <timeout>"})
    page = render(Report(observations.checked_at, [], observations), {})
    assert "no finding, but 1 signal(s) could not be read" in page and "class=ok" not in page
    assert "<li>nginx instance: cannot read its instance through SSM: &lt;timeout&gt;</li>" in page
