"""The README's tour works as written, and every link of the documentation leads somewhere.

The tour's shell blocks (those after `<!-- tour -->`) are put together into one script and run
twice, with bash, against a real `gateway demo` on free ports: the second run is on a database
that already holds the first run's requests, as a reader's may. The demo's own receiver and
mail sink must then have printed every webhook (signature checked) and mail the tour causes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.peers import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
TOUR_URL = "http://127.0.0.1:8080"
START_TIMEOUT_S = 60
ARRIVAL_TIMEOUT_S = 30


def tour_script() -> str:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- tour -->\n```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 3, "the README's tour blocks are marked with <!-- tour -->"
    script = "\n".join(blocks)
    assert TOUR_URL in script, "the tour names the demo's address"
    return script


def _until(what: str, done, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll `done()` until it holds; a process's early exit, or the deadline, fails."""
    deadline = time.monotonic() + timeout
    while not done():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"gateway demo exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.1)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture
def demo(tmp_path: Path):
    """`gateway demo` on free ports: (its URL, the file its output goes to, the process)."""
    port = free_port()
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "demo", "--port", str(port),
             "--webhook-port", str(free_port()), "--smtp-port", str(free_port())],
            stdout=sink, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _until("/healthz", lambda: _healthy(url), START_TIMEOUT_S, process)
        yield url, out, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("curl") is None,
                    reason="the tour is a bash script that uses curl")
def test_the_tour_runs_against_the_demo(demo, tmp_path: Path) -> None:
    url, out, process = demo
    script = tmp_path / "tour.sh"
    script.write_text("set -euo pipefail\n" + tour_script().replace(TOUR_URL, url))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "NO_COLOR": "1"}
    env.pop("GATEWAY_TOKEN", None)
    ids = []
    for _ in range(2):  # the second time on a database that holds the first run's requests
        run = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        ids += re.findall(r"^request (\d+)$", run.stdout, re.M)
    assert len(ids) == 2 and ids[0] != ids[1], ids

    expected = []
    for one in ids:
        expected += [f"webhook #{one} Pending signature ok",
                     f"webhook #{one} Approved signature ok",
                     re.compile(rf"mail to janesmith@acme\.com subject .*\(#{one}\)"),
                     re.compile(rf"mail to johndoe@acme\.com subject .*\(#{one}\)")]

    def arrived() -> bool:
        text = out.read_text(encoding="utf-8")
        return all((e.search(text) if isinstance(e, re.Pattern) else e in text)
                   for e in expected)

    _until("arrival of every delivery", arrived, ARRIVAL_TIMEOUT_S, process)
    text = out.read_text(encoding="utf-8")
    assert "signature BAD" not in text
    assert "Traceback" not in text

    database = re.search(r"database (\S+) \(removed at exit\)", text)
    assert database, text
    process.send_signal(signal.SIGINT)  # Ctrl-C stops everything
    assert process.wait(timeout=60) == 0, out.read_text(encoding="utf-8")
    assert not Path(database.group(1)).parent.exists(), "the throwaway database is removed"


# --- links -----------------------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
_HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.M)


def anchors(path: Path) -> set[str]:
    """The ids GitHub gives the headings of a Markdown file."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    text = _CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    return [a or b for a, b in _LINK.findall(text)]


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if ROOT not in destination.parents and destination != ROOT:
            broken.append(f"{target} (outside the repository)")
        elif not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_pages_link_to_each_other() -> None:
    """Every docs page is reachable from the README."""
    reached = {(ROOT / link.partition("#")[0]).resolve() for link in links(README)}
    assert not [p.name for p in DOCS if p not in reached]


def test_the_readme_is_a_manual() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    assert "SPEC" not in text and "](../" not in text
