"""`gateway demo`'s configuration: the example's catalog, with the demo's own store, mail
server and webhook receiver in place of the file's (the whole demo runs in test_readme.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.demo import demo_config, example_config

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_points_every_hook_at_its_own_receiver(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    raw["policies"].append({**raw["policies"][0], "code": "second", "name": "Second",
                            "hook": {"type": "webhook", "secret": "another-secret-0001",
                                     "url": "https://hooks.example.com/other?x=1"}})
    database = tmp_path / "demo.db"
    config, secrets = demo_config(raw, base_dir=ROOT, database=database, port=18080,
                                  webhook_port=19000, smtp_port=11025)
    urls = [p["hook"]["url"] for p in config.policies]
    assert urls == ["http://127.0.0.1:19000/access", "http://127.0.0.1:19000/other"]
    assert secrets == {"/access": ["example-webhook-secret-change-me"],
                       "/other": ["another-secret-0001"]}
    assert config.store.path == str(database) and config.store.url is None
    assert (config.mail.host, config.mail.port, config.mail.security) == \
        ("127.0.0.1", 11025, "none")
    assert config.webhook.allow_http and config.webhook.allow_private_networks
    assert (config.server.host, config.server.port) == ("127.0.0.1", 18080)
    assert [u.email for u in config.users] == ["johndoe@acme.com", "janesmith@acme.com",
                                               "ticketing@acme.com"]


def test_the_example_is_found_in_a_checkout() -> None:
    assert example_config() == ROOT / "config.example.yaml"
