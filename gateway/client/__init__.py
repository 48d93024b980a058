"""The command-line client of SPEC §11: the approval API's verbs, spoken over HTTP.

Nothing here imports the server (aiohttp, the store, the configuration loader): `gateway`
hands these verbs over before it loads any of that, so a client call starts like a small
script. `gateway.cli.main` checks `VERBS` and calls `gateway.client.main.main`.
"""

from __future__ import annotations

VERBS = ("user", "team", "role", "accessrequest", "delivery", "token", "completion")
EPILOG = ("client verbs, talking to a running gateway (SPEC §11): " + ", ".join(VERBS)
          + "; see `gateway accessrequest --help`")

__all__ = ["EPILOG", "VERBS"]
