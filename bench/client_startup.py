"""Start-up of the command-line client (issue 12): `gateway accessrequest ls --help`, next to
baselines measured in the same run, interleaved so that the machine's swings hit all alike.

    .venv/bin/python bench/client_startup.py [--runs 60]

`--help` parses the whole verb tree and prints, without a server: what every client call pays
before its first request. Target: under 150 ms. Prints median and p90 wall time per command
and the client's cost over `python -c 'import argparse'`. "gateway/cli.py skipped" calls the
client's main directly: the difference is what the server module's own imports (asyncio,
sqlite3, logging) cost every client call.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = str(Path(sys.executable).with_name("gateway"))
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import argparse'": [sys.executable, "-c", "import argparse"],
    "gateway accessrequest ls --help": [GATEWAY, "accessrequest", "ls", "--help"],
    "the same, gateway/cli.py skipped": [
        sys.executable, "-c", "from gateway.client.main import main; "
                              "main(['accessrequest', 'ls', '--help'])"],
    "gateway completion bash": [GATEWAY, "completion", "bash"],
    "gateway --help (server commands)": [GATEWAY, "--help"],
}
TARGET_MS = 150.0


def once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="runs of each command")
    runs = parser.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():  # warm the page cache and the .pyc files
        once(argv)
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            times[name].append(once(argv))
    print(f"{runs} runs each, interleaved; wall time from spawn to exit, in ms")
    print(f"{'command':36} {'median':>7} {'p90':>7} {'min':>7}")
    for name, samples in times.items():
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:36} {statistics.median(samples):7.1f} {p90:7.1f} {min(samples):7.1f}")
    client = statistics.median(times["gateway accessrequest ls --help"])
    base = statistics.median(times["python -c 'import argparse'"])
    verdict = "met" if client < TARGET_MS else "NOT met"
    print(f"client over `import argparse`: +{client - base:.1f} ms at the median; "
          f"target {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
