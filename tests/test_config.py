"""The configuration of SPEC §8: bad files stop start-up with one line naming the key."""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import parse_config
from gateway.errors import ConfigError
from tests.conftest import raw_config

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


def _write(tmp_path: Path, raw: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_example_config_is_valid() -> None:
    result = _run("check-config", "config.example.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_defaults(tmp_path: Path) -> None:
    config = parse_config({}, base_dir=tmp_path)
    assert config.server.port == 8080 and config.server.max_body_bytes == 1048576
    assert config.store.synchronous == "full"
    assert config.store.path == str(tmp_path / "gateway.db")
    assert config.webhook.allow_http is False and config.webhook.allow_private_networks is False
    assert config.requests.pending_ttl.days == 30


@pytest.mark.parametrize(("change", "key"), [
    ({"colour": "red"}, "colour"),
    ({"server": {"prot": 80}}, "server.prot"),
    ({"server": {"port": "eighty"}}, "server.port"),
    ({"server": {"port": True}}, "server.port"),
    ({"server": {"port": 70000}}, "server.port"),
    ({"store": {"synchronous": "off"}}, "store.synchronous"),
    ({"mail": {"security": "ssl"}}, "mail.security"),
    ({"mail": {"from": "nobody"}}, "mail.from"),
    ({"webhook": {"allow_http": "yes"}}, "webhook.allow_http"),
    ({"delivery": {"concurrency": 0}}, "delivery.concurrency"),
    ({"requests": {"pending_ttl": "30 days"}}, "requests.pending_ttl"),
    ({"users": [{"email": "a@b.c"}]}, "users[0].token"),
    ({"users": [{"email": "a@b.c", "token": "short"}]}, "users[0].token"),
    ({"users": [{"email": "a@b.c", "token_env": "GATEWAY_TEST_UNSET_VAR"}]},
     "users[0].token_env"),
    ({"users": [{"email": "a@b.c", "token_sha256": "abc"}]}, "users[0].token_sha256"),
    ({"users": [{"email": "a@b.c", "token": "x" * 20, "admin": "yes"}]}, "users[0].admin"),
    ({"users": [{"email": "a@b.c", "token": "x" * 20, "teams": "ops"}]}, "users[0].teams"),
    ({"users": [{"email": "a@b.c", "token": "x" * 20, "rank": 1}]}, "users[0].rank"),
    ({"users": [{"email": "a@b.c", "token": "x" * 20}, {"email": "a@b.c", "token": "y" * 20}]},
     "users[1].email"),
    ({"policies": [{"code": "p", "name": "P"}]}, "policies[0].approverRoles"),
    ({"items": [{"key": "k", "name": "K", "type": "dataset", "policyCode": "missing"}]},
     "items[0].policyCode"),
])
def test_bad_values_name_the_key(tmp_path: Path, change: dict, key: str) -> None:
    raw = {"store": {"path": str(tmp_path / "g.db")}, **change}
    path = _write(tmp_path, raw)
    result = _run("check-config", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
    assert "Traceback" not in result.stderr


def test_serve_with_bad_config_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, {"server": {"port": "x"}})
    result = _run("serve", "--config", str(path))
    assert result.returncode == 2 and "server.port" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_bad_catalog_exits_2(tmp_path: Path) -> None:
    raw = raw_config(tmp_path / "g.db")
    raw["items"][0]["type"] = "table"
    result = _run("serve", "--config", str(_write(tmp_path, raw)))
    assert result.returncode == 2 and "items[0].type" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    result = _run("check-config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "cannot read" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n", encoding="utf-8")
    result = _run("check-config", str(bad))
    assert result.returncode == 2 and "not valid YAML" in result.stderr


def test_token_from_env_and_sha256() -> None:
    token = "from-the-environment-123"
    config = parse_config(
        {"users": [
            {"email": "a@b.c", "token_env": "GW_TOKEN"},
            {"email": "d@e.f", "token_sha256": hashlib.sha256(b"hashed-token-000000").hexdigest()},
        ]},
        env={"GW_TOKEN": token},
    )
    assert config.users[0].token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(config)


def test_missing_env_var_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"users\[0\]\.token_env: .*GW_NOT_SET"):
        parse_config({"users": [{"email": "a@b.c", "token_env": "GW_NOT_SET"}]}, env={})


def test_python_m_and_console_script_agree() -> None:
    result = _run("--version")
    assert result.returncode == 0 and "gateway" in result.stdout
    script = Path(sys.executable).parent / "gateway"  # installed by pip with the package
    same = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert same.stdout == result.stdout


def test_serving_tunes_the_garbage_collector() -> None:
    """`gateway serve` moves what start-up made out of the collector's way and collects the
    young generation after 10,000 objects rather than 700 (see `cli._tune_gc`)."""
    from gateway.cli import YOUNG_COLLECTION_AFTER, _tune_gc

    saved = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold() == (YOUNG_COLLECTION_AFTER, *saved[1:])
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
