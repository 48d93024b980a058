"""`GET /metrics` (SPEC §13): scraped from a real gateway after real deliveries, its numbers
must be those the API reports; who may scrape; the metrics config key; the operator's files."""

from __future__ import annotations

import asyncio
import collections
import json
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.smtp import Envelope, Session
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.metrics import ERROR_KINDS
from tests.conftest import EMAILS, ORDERS, PROFILE, TOKENS, Gateway, hooked_sections
from tests.peers import MailSink, start_smtp

ROOT = Path(__file__).resolve().parent.parent
METRICS_ENV = "GATEWAY_TEST_METRICS_TOKEN"
METRICS_TOKEN = "metrics-scraper-token-00007"
R = "/v1/resource-access-requests"


class GatedSink(MailSink):
    """Holds every message at DATA until `gate` is set: the lane's next record stays queued."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def gated_sink() -> Iterator[GatedSink]:
    sink = GatedSink()
    controller = start_smtp(sink)
    sink.port = controller.port  # type: ignore[attr-defined]
    yield sink
    sink.gate.set()
    controller.stop()


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30) -> Any:
    """`check()` until it returns something true; bounded, never a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        await asyncio.sleep(0.05)


async def all_deliveries(gw: Gateway) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    path = "/v1/deliveries?limit=500"
    while True:
        page = await gw.get(path, user="admin")
        items += page["items"]
        if not page["nextCursor"]:
            return items
        path = f"/v1/deliveries?limit=500&cursor={page['nextCursor']}"


async def scrape(gw: Gateway, *, user: str | None = "admin",
                 token: str | None = None) -> dict[str, Any]:
    """{family name: family}, parsed by the reference library's own parser."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    status, text = await gw.call("GET", "/metrics", user=None if token else user,
                                 headers=headers)
    assert status == 200, text
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict[str, Any], family: str, name: str) -> dict[tuple[str, ...], float]:
    """{label values (in label-name order): value} of one sample name."""
    return {tuple(v for _, v in sorted(s.labels.items())): s.value
            for s in families[family].samples if s.name == name}


@pytest.fixture
async def metered(start_gateway: Callable[..., Any], receiver: Any, gated_sink: GatedSink,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    """Webhooks (ORDERS) to a path that answers 500, with notifications that the sink refuses
    for the requester; mailhooks (PROFILE) delivered once the sink's gate opens."""
    monkeypatch.setenv(METRICS_ENV, METRICS_TOKEN)
    sections = hooked_sections(receiver, gated_sink, path="/fail",
                               metrics={"token_env": METRICS_ENV})
    sections["mail"]["timeout_s"] = 60  # a gated message is not a timeout
    sections["policies"][0]["emailNotifications"] = True
    gated_sink.refuse = {EMAILS["requester"]}
    yield await start_gateway(**sections)


async def test_metrics_agree_with_the_deliveries_api(metered: Any,
                                                     gated_sink: GatedSink) -> None:
    gw = metered
    # A mailhook held at DATA keeps its request's next mailhook queued (one lane, in order).
    profile = await gw.create(PROFILE)
    await gw.process(profile["id"])

    async def queued_per_channel() -> dict[str, int]:
        counted = collections.Counter(d["channel"] for d in await all_deliveries(gw)
                                      if d["state"] == "queued")
        return dict(counted)

    assert await until(lambda: _equal(queued_per_channel(), {"email": 1}), "a queued mailhook")
    gauge = samples(await scrape(gw), "gateway_deliveries_queued", "gateway_deliveries_queued")
    assert gauge == {("email",): 1, ("webhook",): 0, ("notification",): 0}
    gated_sink.gate.set()

    first = await gw.create(ORDERS)
    await gw.process(first["id"])
    cancelled = await gw.create(ORDERS, action="other-action")
    status, _ = await gw.call("DELETE", f"{R}/{cancelled['id']}")
    assert status == 200
    rejected = await gw.create(PROFILE, action="other-action")
    await gw.process(rejected["id"], "reject")
    assert (await gw.call("GET", "/v1/no-such-route", user="admin"))[0] == 404
    assert (await gw.call("GET", f"{R}/999999", user="admin"))[0] == 404

    async def finished() -> list[dict[str, Any]] | None:
        records = await all_deliveries(gw)
        return None if any(d["state"] in ("queued", "sending") for d in records) else records

    deliveries = await until(finished, "every delivery finished")
    families = await scrape(gw)

    expected = collections.Counter(
        (d["channel"], (d["error"] or {}).get("kind", "none"), d["state"]) for d in deliveries)
    assert {("webhook", "http-status", "failed"), ("email", "none", "delivered"),
            ("notification", "none", "delivered"),
            ("notification", "smtp-rejected", "failed")} <= set(expected), expected
    counted = samples(families, "gateway_deliveries", "gateway_deliveries_total")
    assert {k: v for k, v in counted.items() if v} == expected
    assert {kind for _, kind, _ in counted} <= ERROR_KINDS

    attempts = collections.Counter(d["channel"] for d in deliveries if d["attemptedAt"])
    histogram = samples(families, "gateway_delivery_seconds", "gateway_delivery_seconds_count")
    assert {k[0]: v for k, v in histogram.items() if v} == attempts
    gauge = samples(families, "gateway_deliveries_queued", "gateway_deliveries_queued")
    assert set(gauge.values()) == {0}

    reached: collections.Counter[str] = collections.Counter()
    for request_id in (profile["id"], first["id"], cancelled["id"], rejected["id"]):
        activity = await gw.get(f"{R}/{request_id}/activity", user="admin")
        reached.update(entry["to"] for entry in activity["items"])
    transitions = samples(families, "gateway_transitions", "gateway_transitions_total")
    assert {k[0]: v for k, v in transitions.items() if v} == reached
    assert reached == {"PENDING": 4, "APPROVED": 2, "CANCELLED": 1, "REJECTED": 1}

    http = samples(families, "gateway_http_requests", "gateway_http_requests_total")
    by_route = {route: value for (route, status), value in http.items()}
    assert http[(f"{R}/{{id}}/process", "200")] == 3
    assert http[(f"{R}/{{id}}", "200")] == 1  # the DELETE
    assert http[(f"{R}/{{id}}", "404")] == 1
    assert http[("unmatched", "404")] == 1
    templates = {r.resource.canonical for r in gw.app.router.routes() if r.resource}
    for route in by_route:
        assert route == "unmatched" or route in templates or route.startswith("/ui"), route
    raw = {d["id"] for d in deliveries} | {profile["id"], first["id"], "999999"}
    for family in (f for name, f in families.items() if name.startswith("gateway_")):
        for sample in family.samples:
            for value in sample.labels.values():
                assert not any(r in value.split("/") for r in raw), sample
    assert "process_cpu_seconds" in families or "process_cpu_seconds_total" in families


async def _equal(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def test_who_may_scrape(start_gateway: Callable[..., Any],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(METRICS_ENV, METRICS_TOKEN)
    gw = await start_gateway(metrics={"token_env": METRICS_ENV})
    status, body = await gw.call("GET", "/metrics", user=None)
    assert status == 401 and body["error"]["code"]
    for user in ("requester", "approver", "integration"):
        status, body = await gw.call("GET", "/metrics", user=user)
        assert status == 403 and body["error"]["code"], user
    wrong = {"Authorization": "Bearer not-the-metrics-token-000"}
    assert (await gw.call("GET", "/metrics", user=None, headers=wrong))[0] == 401
    families = await scrape(gw, token=METRICS_TOKEN)
    assert "gateway_deliveries" in families
    await scrape(gw, user="admin")
    async with gw.client.get("/metrics", headers={
            "Authorization": f"Bearer {METRICS_TOKEN}"}) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # The metrics token opens nothing else.
    own = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await gw.call("GET", "/v1/deliveries", user=None, headers=own))[0] == 401


async def test_without_a_metrics_token_only_admins_scrape(gw: Gateway) -> None:
    assert gw.config.metrics.token is None
    assert (await gw.call("GET", "/metrics", user="requester"))[0] == 403
    families = await scrape(gw, user="admin")
    transitions = samples(families, "gateway_transitions", "gateway_transitions_total")
    assert set(transitions.values()) == {0} and ("PENDING",) in transitions


def test_metrics_config() -> None:
    users = [{"email": "a@b.c", "token": TOKENS["admin"], "admin": True}]
    config = parse_config({"users": users, "metrics": {"token_env": "GW_METRICS"}},
                          env={"GW_METRICS": METRICS_TOKEN})
    assert config.metrics.token == METRICS_TOKEN and METRICS_TOKEN not in repr(config)
    assert parse_config({}).metrics.token is None
    bad = [
        ({"metrics": {"token": "x" * 20}}, {}, r"metrics\.token: unknown key"),
        ({"metrics": {"token_env": "GW_METRICS"}}, {}, r"metrics\.token_env: .*GW_METRICS"),
        ({"metrics": {"token_env": "GW_METRICS"}}, {"GW_METRICS": "short"},
         r"metrics\.token_env: a token needs at least"),
        ({"metrics": {"token_env": 3}}, {}, r"metrics\.token_env: "),
        ({"metrics": ["token_env"]}, {}, r"metrics: expected a mapping"),
        ({"users": users, "metrics": {"token_env": "GW_METRICS"}},
         {"GW_METRICS": TOKENS["admin"]}, r"metrics\.token_env: .*a user's token"),
    ]
    for raw, env, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_config(raw, env=env)


def test_alert_rules_and_dashboard_are_well_formed() -> None:
    """promtool, when installed, checks the rules properly (`promtool check rules`); this
    checks their shape and that they name only metrics the gateway exports."""
    rules = yaml.safe_load((ROOT / "docs" / "alerts.yaml").read_text("utf-8"))
    names = {"gateway_deliveries_total", "gateway_delivery_seconds_bucket",
             "gateway_deliveries_queued", "gateway_transitions_total",
             "gateway_http_requests_total"}
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in alerts} >= {
        "GatewayDeliveriesFailing", "GatewayDeliveryQueueGrowing",
        "GatewayNoDeliveriesWhileApproving"}
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["annotations"]["summary"] and rule["labels"]["severity"]
        assert any(name in rule["expr"] for name in names), rule["expr"]
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text("utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 4 and all(any(n in e for n in names) for e in exprs)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed "
                    "(Debian: apt-get install prometheus)")
def test_alert_rules_pass_promtool() -> None:
    """The rules parse as PromQL, and fire (and stay quiet) as docs/alerts.test.yaml says."""
    for command in (["check", "rules", "alerts.yaml"], ["test", "rules", "alerts.test.yaml"]):
        result = subprocess.run(["promtool", *command], cwd=ROOT / "docs", capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
