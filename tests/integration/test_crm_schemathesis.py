"""The CRM's API fuzzed from its own OpenAPI document by schemathesis: every check, valid and invalid data,
every phase (examples, coverage, fuzzing, stateful), straight at Gunicorn and through the public ALB. Any
5xx, any answer the document does not describe, any valid request refused or invalid one accepted fails.

schemathesis runs as its CLI (its pytest plugin does not work with pytest 9), with a bounded number of
examples per operation and a fixed seed, so a run is repeatable and takes well under two minutes for both
targets on two cores. Settings that the CLI has no flag for are in schemathesis.toml beside this file.
tests/unit/test_crm_properties.py covers with Hypothesis what the document cannot express.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Server, app_spec, create_tables, dynamodb, moto_spec, public_alb_spec, start_server

EXAMPLES = 25  # per operation and phase
SEED = 20261126  # change it to explore other examples; schemathesis prints the seed of every run


@pytest.fixture(scope="module")
def crm_process(tmp_path_factory) -> Iterator[Server]:
    """A CRM under real Gunicorn on a moto server of its own (the fuzzer writes thousands of items)."""
    tmp = tmp_path_factory.mktemp("fuzzed-crm")
    moto = start_server(moto_spec(tmp))
    create_tables(dynamodb(moto.url))
    crm = start_server(app_spec("crm_app", tmp, moto.url))
    yield crm
    crm.stop()
    moto.stop()


@pytest.fixture(scope="module")
def crm_alb(crm_process, tmp_path_factory) -> Iterator[Server]:
    """The public ALB (HAProxy from the committed template) in front of that CRM."""
    alb = start_server(public_alb_spec(tmp_path_factory.mktemp("fuzzed-alb"), crm_process.port))
    yield alb
    alb.stop()


def schemathesis(url: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run schemathesis against the API whose document is at `url`/openapi.json."""
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    argv = [binary, "--config-file", str(Path(__file__).with_name("schemathesis.toml")), "run",
            f"{url}/openapi.json", "--checks", "all", "--mode", "all", "--max-examples", str(EXAMPLES),
            "--seed", str(SEED), "--workers", "1", "--generation-database", "none", "--no-color",
            "--request-timeout", "10", "--wait-for-schema", "15"]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_the_api_straight_at_gunicorn_has_no_server_error_and_keeps_its_document(crm_process, tmp_path):
    result = schemathesis(crm_process.url, tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout


def test_the_api_through_the_public_alb_has_no_server_error_and_keeps_its_document(crm_alb, tmp_path):
    result = schemathesis(crm_alb.url, tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
