"""The tool's pieces in process: table definitions against the spec, config rendering, settings."""

from __future__ import annotations

import pytest

from sre_workshop.local.components import components, engine_url
from sre_workshop.local.configs import local_haproxy, local_nginx
from sre_workshop.settings import Settings
from sre_workshop.tables import table_definitions

SPEC_KEYS = {
    "ApplicationMetricsTable": [("metric_id", "S", "HASH"), ("timestamp", "N", "RANGE")],
    "CRMCustomersTable": [("customer_id", "S", "HASH")],
    "CRMDealsTable": [("deal_id", "S", "HASH")],
    "CRMActivitiesTable": [("activity_id", "S", "HASH")],
    "IncidentHistoryTable": [("incident_id", "S", "HASH"), ("occurred_at", "N", "RANGE")],
}


def test_tables_match_the_spec():
    tables = {t["TableName"]: t for t in table_definitions()}
    assert set(tables) == set(SPEC_KEYS)
    for name, keys in SPEC_KEYS.items():
        types = {a["AttributeName"]: a["AttributeType"] for a in tables[name]["AttributeDefinitions"]}
        schema = tables[name]["KeySchema"]
        assert [(k["AttributeName"], types[k["AttributeName"]], k["KeyType"]) for k in schema] == keys
        assert tables[name]["BillingMode"] == "PAY_PER_REQUEST"
    for name in ("CRMDealsTable", "CRMActivitiesTable"):
        (gsi,) = tables[name]["GlobalSecondaryIndexes"]
        assert gsi["IndexName"] == "customer-index"
        assert gsi["KeySchema"] == [{"AttributeName": "customer_id", "KeyType": "HASH"}]
    assert all("GlobalSecondaryIndexes" not in tables[n] for n in ("CRMCustomersTable", "ApplicationMetricsTable"))


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({}, state_dir=tmp_path, port_offset=7)


def test_haproxy_configs_carry_ports_and_health_check_knobs(settings):
    public = local_haproxy(settings, "public-alb", "127.0.0.1:1")
    assert "bind 127.0.0.1:8007" in public and "bind 127.0.0.1:8087" in public
    assert "server NginxInstance1 127.0.0.1:8008 check" in public
    assert "option httpchk GET /health" in public and "inter 1000ms rise 2 fall 3" in public
    private = local_haproxy(settings, "private-alb", "127.0.0.1:1")
    assert "server AppServerInstance1 127.0.0.1:8010 check" in private
    endpoint = components(settings)["dynamodb-endpoint"].spec.argv
    assert endpoint[endpoint.index("--engine") + 1] == engine_url(settings)
    assert endpoint[endpoint.index("--iam-endpoint") + 1] == settings.url("aws-api")


def test_local_nginx_points_at_the_private_alb_and_keeps_state_local(settings):
    conf = local_nginx(settings)
    assert 'set $private_alb "127.0.0.1:8009";' in conf
    assert "listen 127.0.0.1:8008 default_server;" in conf
    assert "/var/log/nginx" not in conf and "pid /run/nginx.pid;" not in conf
    assert str(settings.state_dir) in conf


def test_settings_port_offset_and_endpoints(settings):
    assert settings.endpoints == {"app": "http://127.0.0.1:8007", "crm": "http://127.0.0.1:8087"}
