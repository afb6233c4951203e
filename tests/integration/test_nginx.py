"""The nginx web tier: the committed template, rendered for AWS and locally, checked by real nginx."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sre_workshop.errors import ConfigTemplateError
from sre_workshop.local.configs import NGINX_TEMP_KINDS, localize_nginx, render_nginx
from sre_workshop.local.process import ProcessSpec, find_program, free_port

from conftest import ROOT, Server, eventually, http, start_server

TEMPLATE = (ROOT / "infra" / "nginx" / "nginx.conf").read_text()
AWS_DNS = "internal-sre-workshop-private-alb-1234567890.us-east-1.elb.amazonaws.com"


def nginx_t(conf: Path, error_log: Path) -> subprocess.CompletedProcess:
    return subprocess.run([find_program("nginx"), "-t", "-c", str(conf), "-e", str(error_log)],
                          capture_output=True, text=True, check=False)


def test_template_has_what_the_spec_asks_for():
    assert "PRIVATE_ALB_DNS_PLACEHOLDER" in TEMPLATE
    for directive in ("server_tokens off;", "client_max_body_size", "proxy_read_timeout 60s;",
                      "proxy_connect_timeout", "proxy_send_timeout", "X-Forwarded-For", "X-Request-ID",
                      "/var/log/nginx/access.log", "/var/log/nginx/error.log", "location = /health"):
        assert directive in TEMPLATE, directive


def test_aws_rendering_replaces_the_placeholder():
    # The AWS rendering is also run by the real install script and checked with `nginx -t` in
    # tests/integration/test_install_steps.py.
    conf = render_nginx(TEMPLATE, AWS_DNS)
    assert "PRIVATE_ALB_DNS_PLACEHOLDER" not in conf and f'set $private_alb "{AWS_DNS}";' in conf


def test_a_template_without_the_placeholder_is_refused():
    with pytest.raises(ConfigTemplateError):
        render_nginx(TEMPLATE.replace("PRIVATE_ALB_DNS_PLACEHOLDER", "10.0.0.1"), AWS_DNS)
    with pytest.raises(ConfigTemplateError, match="listen 80"):
        localize_nginx(TEMPLATE.replace("listen 80 default_server;", "listen 81;"), "127.0.0.1:1", Path("/r"),
                       Path("/l"), Path("/t"))


@pytest.fixture
def nginx_before(tmp_path, moto, start_app):
    """Real nginx, rendered from the template, in front of a real sre-app."""
    app = start_app("sre_app", moto.url, FAULT_CONTROL_TOKEN="tok")
    port = free_port()
    for kind in NGINX_TEMP_KINDS:
        (tmp_path / "temp" / kind).mkdir(parents=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(localize_nginx(render_nginx(TEMPLATE, f"127.0.0.1:{app.port}"), f"127.0.0.1:{port}",
                                   tmp_path, tmp_path, tmp_path / "temp"))
    assert nginx_t(conf, tmp_path / "nginx-error.log").returncode == 0
    spec = ProcessSpec("nginx", [find_program("nginx"), "-c", str(conf), "-e",
                                 str(tmp_path / "nginx-error.log"), "-g", "daemon off;"],
                       tmp_path / "nginx.out", ports=[port])
    server = start_server(spec)
    yield server, app
    server.stop()


def test_nginx_proxies_to_the_app_with_request_id(nginx_before: tuple[Server, Server], tmp_path):
    nginx, _app = nginx_before
    reply = http("GET", nginx.url + "/", headers={"X-Request-ID": "abc-123"})
    assert reply.status == 200 and reply.json()["message"] == "SRE Workshop App"
    assert reply.headers["x-request-id"] == "abc-123"
    assert reply.headers["server"] == "nginx"  # no version: server_tokens off
    minted = http("GET", nginx.url + "/").headers["x-request-id"]
    assert len(minted) == 32

    def logged():
        lines = (tmp_path / "nginx-access.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line]

    entries = eventually(logged, timeout=5)
    assert {"time", "status", "request_id", "upstream_addr", "request_time"} <= set(entries[0])
    assert any(e["request_id"] == "abc-123" for e in entries)


def test_nginx_answers_health_itself(nginx_before):
    nginx, app = nginx_before
    app.stop()
    assert http("GET", nginx.url + "/health").json()["tier"] == "nginx"
    assert http("GET", nginx.url + "/").status == 502


@pytest.mark.parametrize("path", ["/admin/leak", "/admin", "//admin/leak", "/%61dmin/leak", "/admin/../admin/leak"])
def test_fault_control_is_denied_through_nginx(nginx_before, path):
    nginx, app = nginx_before
    assert http("GET", app.url + "/admin/leak", headers={"X-Fault-Token": "tok"}).status == 200  # it exists
    reply = http("PUT", nginx.url + path, {"mode": "time"}, headers={"X-Fault-Token": "tok"})
    assert reply.status == 403


def test_oversized_bodies_are_refused(nginx_before):
    nginx, _ = nginx_before
    assert http("POST", nginx.url + "/", b"x" * (2 * 1024 * 1024)).status == 413
