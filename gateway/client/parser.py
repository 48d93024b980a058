"""The verbs of SPEC §11 as an argparse tree; each leaf names the function that runs it.

argparse, not a third-party library: it is in the standard library, starts in ~7 ms, and
gives `--help`, exit status 2 on bad usage and a tree that `completion.py` can walk.
Filters are not checked here: the server is their one source of truth. The documented fields
are declared (for `--help` and completion) and any other `--FIELD VALUE` is passed through
as it is, so that a field the server learns tomorrow works with today's client.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from gateway.client import VERBS
from gateway.timeutil import duration_for_api

DEFAULT_URL = "http://127.0.0.1:8080"
REQUEST_FILTERS = ("requestId", "requestedBy", "action", "resource", "target", "state",
                   "createdAt", "processedAt", "expiresAt", "recipients")
DELIVERY_FILTERS = ("state", "channel", "event", "requestId", "since")
SHELLS = ("bash", "zsh")
PAGE_MAX = 500  # the API's largest page (SPEC §9)


class Filter(argparse.Action):
    """Appends `(name, value)` to `filters`, keeping the command line's order."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        namespace.filters = [*getattr(namespace, "filters", []), (self.dest, values)]


def _duration(text: str) -> str:
    """`--duration` as the API takes it: ISO 8601 as given, or what people type (`2 hours`,
    `3d`), read by the parser of the web inbox's form."""
    try:
        return duration_for_api(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {text!r}")
    return int(text)


def _connection() -> argparse.ArgumentParser:
    """The options every call of the API takes (after the verb)."""
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    group = common.add_argument_group("connection")
    group.add_argument("--url", default=os.environ.get("GATEWAY_URL") or DEFAULT_URL,
                       help="the gateway (default: $GATEWAY_URL, else %(default)s)")
    group.add_argument("--token-env", default="GATEWAY_TOKEN", metavar="VAR",
                       help="the environment variable holding your token (default "
                            "%(default)s); a token is never taken from the command line")
    group.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="how long to wait for each answer (default %(default)g)")
    group.add_argument("--json", action="store_true",
                       help="print the API's JSON document(s) instead of text")
    return common


def _leaf(group: Any, name: str, run: str, help_: str, common: argparse.ArgumentParser,
          *, passthrough: bool = False) -> argparse.ArgumentParser:
    leaf = group.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".",
                            parents=[common], allow_abbrev=False)
    leaf.set_defaults(run=run, passthrough=passthrough, filters=[], leaf=leaf)
    return leaf


def _ids(leaf: argparse.ArgumentParser, what: str) -> None:
    leaf.add_argument("ids", nargs="+", metavar="ID", help=f"one or more {what} ids")


def _request_access(verbs: Any, common: argparse.ArgumentParser) -> None:
    for kind, whose in (("user", "a user (yourself; admins: anyone)"),
                        ("team", "a team you belong to"), ("role", "a role you hold")):
        parser = verbs.add_parser(kind, help=f"request access for {whose}", allow_abbrev=False)
        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
        leaf = _leaf(sub, "request-access", "request_access",
                     f"request access for {whose}", common)
        leaf.set_defaults(kind=kind)
        leaf.add_argument("id", metavar="ID", help=f"the {kind}" + (" (an e-mail address)"
                                                                     if kind == "user" else ""))
        leaf.add_argument("--action", required=True, help="e.g. read-data")
        leaf.add_argument("--resource", required=True, metavar="KEY", help="the item's key")
        leaf.add_argument("--reason", metavar="TEXT", help="why (free-text policies)")
        leaf.add_argument("--use-case", metavar="KEY", help="the use case (use-case policies)")
        leaf.add_argument("--extra", action="extend", nargs="+", metavar="VALUE",
                          help="values of the use case's extra property (repeatable)")
        leaf.add_argument("--audience", metavar="TEXT")
        ends = leaf.add_mutually_exclusive_group()
        ends.add_argument("--expiration", metavar="TIME", help="when access should end")
        ends.add_argument("--duration", metavar="DURATION", type=_duration,
                          help="how long: 4 hours, 1 day, 1 week, or ISO 8601 (PT4H, P7D)")
        leaf.add_argument("--shareable", action="store_true")
        leaf.add_argument("--scope", metavar="TEXT")
        leaf.add_argument("--cascades", action="store_true")


def _access_requests(verbs: Any, common: argparse.ArgumentParser) -> None:
    parser = verbs.add_parser("accessrequest", help="list, read and decide access requests",
                              allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ls = _leaf(sub, "ls", "list_requests", "list access requests (your own by default)",
               common, passthrough=True)
    scope = ls.add_mutually_exclusive_group()
    scope.add_argument("--actionable", action="store_true",
                       help="the pending requests you may approve or reject")
    scope.add_argument("--all", action="store_true", help="every request (admins)")
    filters = ls.add_argument_group(
        "filters", "FIELD VALUE for equality, or FIELD OP:VALUE with OP in in, ne, gt, ge, "
                   "lt, le (e.g. --state in:PENDING,APPROVED --createdAt gt:2026-01-01); "
                   "repeat a field for a range; any other --FIELD VALUE is passed on as it is")
    for name in REQUEST_FILTERS:
        filters.add_argument(f"--{name}", action=Filter, metavar="[OP:]VALUE")
    _listing(ls, "action,-createdAt")
    get = _leaf(sub, "get", "get_request", "show a request, its activity and its deliveries",
                common)
    get.add_argument("id", metavar="ID")
    set_ = _leaf(sub, "set", "set_reason", "change the reason of your pending request", common)
    set_.add_argument("id", metavar="ID")
    set_.add_argument("--request-reason", required=True, metavar="TEXT")
    _ids(_leaf(sub, "cancel", "cancel", "cancel your pending request(s)", common), "request")
    approve = _leaf(sub, "approve", "approve", "approve pending request(s)", common)
    _ids(approve, "request")
    approve.add_argument("--remarks", metavar="TEXT")
    ends = approve.add_mutually_exclusive_group()
    ends.add_argument("--duration", metavar="DURATION", type=_duration,
                      help="grant for this long instead (2 hours, 3 days, PT4H)")
    ends.add_argument("--expiration", metavar="TIME", help="grant until this time instead")
    reject = _leaf(sub, "reject", "reject", "reject pending request(s)", common)
    _ids(reject, "request")
    reject.add_argument("--remarks", metavar="TEXT")
    activity = _leaf(sub, "activity", "activity", "a request's history, with comments", common)
    activity.add_argument("id", metavar="ID")
    deliveries = _leaf(sub, "deliveries", "request_deliveries",
                       "the hook and notification deliveries of a request", common)
    deliveries.add_argument("id", metavar="ID")
    fulfil = _leaf(sub, "fulfill", "fulfil",
                   "report that access was granted, or failed (integration users)", common)
    fulfil.add_argument("id", metavar="ID")
    fulfil.add_argument("--status", required=True, choices=("granted", "error"))
    fulfil.add_argument("--message", metavar="TEXT")


def _deliveries(verbs: Any, common: argparse.ArgumentParser) -> None:
    parser = verbs.add_parser("delivery", help="delivery records and redelivery (admins)",
                              allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ls = _leaf(sub, "ls", "list_deliveries", "list delivery records, oldest first", common,
               passthrough=True)
    filters = ls.add_argument_group(
        "filters", "checked by the server; any other --FIELD VALUE is passed on as it is")
    for name in DELIVERY_FILTERS:
        filters.add_argument(f"--{name}", action=Filter,
                             metavar="TIME" if name == "since" else "VALUE")
    _listing(ls, None)
    get = _leaf(sub, "get", "get_delivery", "one record, with the request that was sent",
                common)
    get.add_argument("id", metavar="ID")
    get.add_argument("--body", action="store_true",
                     help="print only the body that was sent, byte for byte (pipe it to "
                          "`gateway verify`)")
    again = _leaf(sub, "redeliver", "redeliver",
                  "a new attempt of each record, or of every finished record matching filters",
                  common)
    again.add_argument("ids", nargs="*", metavar="ID", help="one or more delivery ids")
    filters = again.add_argument_group(
        "filters", "instead of ids: every finished record matching them, at most 1,000 "
                   "(e.g. --state failed --since 2026-01-01)")
    for name in DELIVERY_FILTERS:
        filters.add_argument(f"--{name}", action=Filter,
                             metavar="TIME" if name == "since" else "VALUE")


def _tokens(verbs: Any, common: argparse.ArgumentParser) -> None:
    parser = verbs.add_parser("token", help="your personal access tokens (gwpat_...)",
                              allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = _leaf(sub, "create", "create_token",
                   "create a token of yours, printed once and alone on stdout (not with a "
                   "personal access token)",
                   common)
    create.add_argument("name", metavar="NAME", help="what the token is for (e.g. laptop)")
    create.add_argument("--expires-in", metavar="ISO8601",
                        help="how long it works (default P90D, at most P366D)")
    ls = _leaf(sub, "ls", "list_tokens",
               "list your tokens (admins: everyone's), never the tokens themselves", common)
    ls.add_argument("--email", action=Filter, metavar="EMAIL",
                    help="one person's tokens (admins)")
    _listing(ls, None)
    _ids(_leaf(sub, "revoke", "revoke_tokens",
               "revoke token(s): they stop working at once", common), "token")


def _listing(ls: argparse.ArgumentParser, order_example: str | None) -> None:
    if order_example:
        ls.add_argument("--order", metavar="KEYS",
                        help=f"comma list of keys, - for descending (e.g. {order_example})")
    ls.add_argument("--limit", type=_positive, default=50,
                    help="rows to show, following nextCursor page after page (default "
                         "%(default)s)")
    ls.add_argument("--page-size", type=_positive, default=PAGE_MAX, metavar="N",
                    help="rows per call of the API (default %(default)s, its most)")
    ls.add_argument("--cursor", help="start from this nextCursor of an earlier listing")


def build() -> argparse.ArgumentParser:
    """The client's half of `gateway` (the server's half is in gateway/cli.py)."""
    parser = argparse.ArgumentParser(prog="gateway", allow_abbrev=False,
                                     description="A client of a running gateway's API.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    common = _connection()
    _request_access(verbs, common)
    _access_requests(verbs, common)
    _deliveries(verbs, common)
    _tokens(verbs, common)
    completion = verbs.add_parser("completion", help="print a shell completion script",
                                  description="Print a completion script for bash or zsh: "
                                              "`source <(gateway completion bash)`.")
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(run="completion", passthrough=False, filters=[], leaf=completion)
    assert tuple(verbs.choices) == VERBS
    return parser


def joined_values(argv: Sequence[str], options: Sequence[str] = ("--order",)) -> list[str]:
    """`--order -createdAt` as `--order=-createdAt`: argparse would take it for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in options and arg.startswith("-"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def passed_through(extras: Sequence[str]) -> list[tuple[str, str]] | str:
    """`--FIELD VALUE` and `--FIELD=VALUE` pairs, or the reason they are not."""
    pairs: list[tuple[str, str]] = []
    rest = list(extras)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--") or len(arg) == 2:
            return f"unrecognized argument: {arg}"
        name, equals, value = arg[2:].partition("=")
        if not equals:
            if not rest or rest[0].startswith("--"):
                return f"{arg} needs a value (--FIELD VALUE or --FIELD OP:VALUE)"
            value = rest.pop(0)
        pairs.append((name, value))
    return pairs
