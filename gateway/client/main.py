"""`gateway VERB ...` for the client verbs: parse, find the token, run, map to exit status.

Exit status (SPEC §11): 0 done; 1 the API refused (its code and message on stderr); 2 bad
usage, no token, or no server. The modules that talk HTTP are imported only once the command
line is known to be good, so `--help` and usage errors cost nothing but argparse.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from gateway.client.parser import build, joined_values, passed_through

EXIT_REFUSED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None, *,
         server_parser: Callable[[], argparse.ArgumentParser] | None = None) -> int:
    """`server_parser` builds the tree of the program's other commands (gateway.cli gives
    its own), for `gateway completion` to complete them too."""
    parser = build()
    args, extras = parser.parse_known_args(joined_values(
        sys.argv[1:] if argv is None else argv))
    if extras:
        pairs = passed_through(extras) if args.passthrough else \
            "unrecognized arguments: " + " ".join(extras)
        if isinstance(pairs, str):
            args.leaf.error(pairs)  # exits 2
        args.filters = [*args.filters, *pairs]
    if args.run == "completion":
        from gateway.client.completion import script

        print(script(args.shell, parser, server_parser), end="")
        return 0
    token = os.environ.get(args.token_env, "").strip()
    if not token:
        print(f"gateway: no token: set the environment variable {args.token_env} "
              f"(or name another one with --token-env)", file=sys.stderr)
        return EXIT_USAGE
    if not token.isascii() or not token.isprintable() or " " in token:
        print(f"gateway: {args.token_env} does not hold a token (spaces or non-ASCII "
              f"characters)", file=sys.stderr)
        return EXIT_USAGE
    return _run(args, token)


def _run(args: argparse.Namespace, token: str) -> int:
    from gateway.client.commands import VERBS, Context, refusal
    from gateway.client.http import Api, ApiError, Unreachable

    api = None
    try:
        api = Api(args.url, token, timeout=args.timeout)
        return VERBS[args.run](Context(api, args.json), args)
    except ApiError as exc:
        print(refusal(" ".join(_doing(args)), exc), file=sys.stderr)
        return EXIT_REFUSED
    except Unreachable as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # `gateway accessrequest ls | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    finally:
        if api is not None:
            api.close()


def _doing(args: argparse.Namespace) -> list[str]:
    """`ls`, `get 7`: what the refused call was, for the one line on stderr."""
    words = [getattr(args, "command", "")]
    if isinstance(getattr(args, "id", None), str):
        words.append(args.id)
    return words
