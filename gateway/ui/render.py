"""Pages from `templates/ui/` (Jinja2, every value escaped), and the words they show times in.

Times are rendered in UTC, in a `<time datetime="…Z" data-local>` element: without
JavaScript that is what people read; `static/ui.js` rewrites each in the browser's time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from gateway.resources import resource_dir
from gateway.timeutil import describe_duration, parse_api_duration, parse_time, utcnow
from gateway.ui.keys import TEMPLATES, VISITOR

HTML_TYPE = "text/html"
DURATIONS = (("PT1H", "1 hour"), ("PT4H", "4 hours"), ("P1D", "1 day"), ("P7D", "1 week"))
CHANGE_WORDS = {"duration": "Duration", "expiration": "End date", "reason": "Reason"}
STATE_WORDS = {
    "PENDING": "Pending", "APPROVED": "Approved", "REJECTED": "Rejected",
    "CANCELLED": "Cancelled", "EXPIRED": "Expired", "GRANTED": "Granted", "ERROR": "Error",
    "REVOKED": "Revoked",
}


def when_text(text: str | None) -> str:
    """`2026-01-01 09:00 UTC`: to the minute, the zone said (the API keeps microseconds)."""
    if not text:
        return ""
    return parse_time(text).strftime("%Y-%m-%d %H:%M UTC")


def when(text: str | None) -> Markup:
    """`when_text` in a `<time>` element that the browser's script shows in local time."""
    if not text:
        return Markup("")
    return Markup('<time datetime="{}" data-local>{}</time>').format(
        escape(text), when_text(text))


def span(seconds: float) -> str:
    """A duration for people: the two largest units (`2 d 4 h`, `3 h 12 min`, `40 s`)."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def left(text: str | None, now: datetime | None = None) -> str:
    """Time from now until `text`; `ended` once passed."""
    if not text:
        return ""
    remaining = (parse_time(text) - (now or utcnow())).total_seconds()
    return span(remaining) + " left" if remaining > 0 else "ended"


def duration_words(iso: str | None) -> str:
    """`PT4H` as `4 hours`; a duration stored before the API's pattern was strict as it is."""
    if not iso:
        return "no end date"
    try:
        return describe_duration(parse_api_duration(iso.upper()))
    except ValueError:
        return iso


def item_path(key: str) -> str:
    """An item key in a path segment (keys hold `/`)."""
    return quote(key, safe="")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("templates") / "ui"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(when=when, left=left, duration_words=duration_words,
                       item_path=item_path, state_words=lambda s: STATE_WORDS.get(s, s))
    env.globals.update(DURATIONS=DURATIONS, urlencode=urlencode, change_words=CHANGE_WORDS)
    return env


def page(request: web.Request, template: str, *, status: int = 200,
         **context: Any) -> web.Response:
    """A rendered page for this request's visitor (its user, its CSRF token)."""
    visitor = request[VISITOR]
    env = request.config_dict[TEMPLATES]
    html = env.get_template(template).render(
        user=visitor.user, csrf=visitor.csrf, via=visitor.via, path=request.path,
        **context)
    return web.Response(text=html, status=status, content_type=HTML_TYPE, charset="utf-8")


def see_other(location: str) -> web.Response:
    """After a form: the browser GETs the result (a reload does not post again)."""
    return web.Response(status=303, headers={"Location": location})
