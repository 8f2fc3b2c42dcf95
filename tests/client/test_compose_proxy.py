"""docker-compose.yml's security shape (issue 12 items 1 and 8): clients reach the API only through the proxy
service, /metrics needs a token there, and the proxy's image and config agree with the API's settings.

deploy/nginx.conf itself runs under the real nginx in test_proxy.py.
"""

from __future__ import annotations

import re

import yaml

from trainyard.store.settings import Settings

from tests.support import ROOT
from tests.support.composestack import COMPOSE_FILE, REQUIRED_ENV, compose_config

NGINX_CONF = (ROOT / "deploy" / "nginx.conf").read_text()


def test_the_compose_file_refuses_to_start_without_a_metrics_token(tmp_path):
    for env in ({}, {"TRAINYARD_METRICS_TOKEN": ""}):
        refused = compose_config(tmp_path, env=env)
        assert refused.returncode != 0 and "TRAINYARD_METRICS_TOKEN" in refused.stderr, refused.stderr
    config = compose_config(tmp_path, env={"TRAINYARD_METRICS_TOKEN": "m-3f9a"})
    assert config.returncode == 0, config.stderr
    assert yaml.safe_load(config.stdout)["services"]["api"]["environment"]["TRAINYARD_METRICS_TOKEN"] == "m-3f9a"


def test_only_the_proxy_publishes_a_port_and_the_api_believes_only_it(tmp_path):
    config = compose_config(tmp_path)
    assert config.returncode == 0, config.stderr
    services = yaml.safe_load(config.stdout)["services"]
    # Flower (the monitoring profile) publishes on the host's loopback only (test_client_compose.py).
    assert [name for name, service in services.items() if service.get("ports") and not service.get("profiles")] \
        == ["proxy"]
    [published] = services["proxy"]["ports"]
    published = published if isinstance(published, str) else f"{published['published']}:{published['target']}"
    assert published.startswith("8000:8080")
    assert services["proxy"]["build"]["dockerfile"] == "deploy/proxy.Dockerfile"
    assert services["proxy"]["depends_on"]["api"] == {"condition": "service_healthy"}
    assert any(str(v).endswith("deploy/nginx.conf:/etc/nginx/nginx.conf:ro") or
               (isinstance(v, dict) and v.get("target") == "/etc/nginx/nginx.conf") for v in services["proxy"]["volumes"])
    api = services["api"]["environment"]
    assert api["TRAINYARD_TRUSTED_PROXIES"] == "1"  # one proxy: its X-Forwarded-For entry names the client
    assert api["TRAINYARD_RATE_LIMIT_STORAGE_URL"] == "redis://redis:6379/1"  # shared by every API process
    assert api["TRAINYARD_DATABASE_URL"] == services["worker-cpu"]["environment"]["TRAINYARD_DATABASE_URL"]
    assert "TRAINYARD_TRUSTED_PROXIES" not in services["worker-cpu"]["environment"]


def test_every_variable_the_compose_file_reads_is_in_env_example():
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert used - example == set()
    assert set(REQUIRED_ENV) <= used


def _directive(name: str) -> str:
    [value] = re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_CONF, re.MULTILINE)
    return value


def test_the_proxy_buffers_bodies_up_to_the_api_s_upload_limit_and_streams_events():
    size = _directive("client_max_body_size")
    assert size.endswith("m") and int(size[:-1]) * 2**20 == Settings().max_upload_bytes
    assert _directive("proxy_request_buffering") == "on" and _directive("client_body_buffer_size") == "1m"
    for timeout in ("client_header_timeout", "client_body_timeout"):
        assert re.fullmatch(r"\d+s", _directive(timeout))
    events = NGINX_CONF.split("location ~ ^/api/v1/jobs/[^/]+/events$ {", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off;" in events and "proxy_read_timeout 3600s;" in events
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in NGINX_CONF
    assert "# listen 8443 ssl;" in NGINX_CONF  # the TLS lines the README tells how to turn on


def test_the_proxy_image_is_debian_s_nginx_on_the_same_base_as_the_others():
    base = re.findall(r"^FROM (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    proxy = (ROOT / "deploy" / "proxy.Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)$", proxy, re.MULTILINE) == base
    assert "apt-get install" in proxy and "nginx-light" in proxy
    assert "COPY deploy/nginx.conf /etc/nginx/nginx.conf" in proxy and "USER www-data" in proxy
