"""In-process fixtures for the unit tier, as in Flask's tutorial: each app built by create_app from explicit
settings, its test client, and moto's in-process DynamoDB (mock_aws) behind the CRM. No process, no port,
no environment read by the apps.

tests/conftest.py imports them: a second conftest.py (in tests/unit) would take the module name `conftest`
from the first, and the integration tests import their helpers from `conftest`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from hypothesis import settings
from moto import mock_aws

from appkit.aws import forget_clients
from crm_app.app import create_app as create_crm
from crm_app.config import Settings as CRMSettings
from sre_app.app import create_app as create_sre_app
from sre_app.config import Settings as AppSettings
from sre_workshop.tables import create_tables

TOKEN = "unit-fault-token"

# No example database (a failure prints the example that made it); Hypothesis still caches in .hypothesis/,
# which ignores itself in git.
settings.register_profile("sre-workshop", database=None)
settings.load_profile("sre-workshop")


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """moto's in-process DynamoDB with the five tables; the apps' cached clients are made inside it."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    forget_clients()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield
    forget_clients()


@pytest.fixture
def crm_log(tmp_path) -> Path:
    return tmp_path / "crm.json.log"


@pytest.fixture
def crm_in_process(aws, crm_log):
    """The CRM app, from explicit settings."""
    return create_crm(CRMSettings(log_file=str(crm_log)))


@pytest.fixture
def crm_client(crm_in_process):
    return crm_in_process.test_client()


@pytest.fixture
def sre_in_process(tmp_path):
    """sre-app from explicit settings, with the fault control on; its threads are not started."""
    (tmp_path / "run").mkdir()  # made by systemd on AWS, by gunicorn.conf.py locally
    return create_sre_app(AppSettings(log_file=str(tmp_path / "sre-app.json.log"), fault_control_token=TOKEN,
                                      runtime_dir=str(tmp_path / "run")))


@pytest.fixture
def sre_client(sre_in_process):
    return sre_in_process.test_client()
