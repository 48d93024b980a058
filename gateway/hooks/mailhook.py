"""The XML mailhook (SPEC §5): rendered by Jinja2 with autoescape, then parsed and validated
against schemas/mailhook.xsd; a document that fails is never sent.

Text is made XML-safe before rendering: characters that XML 1.0 forbids become U+FFFD, and the
purpose goes into CDATA sections, a `]]>` inside it split across two of them.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import jinja2
from lxml import etree
from markupsafe import Markup

from gateway.hooks.payload import HookContext
from gateway.resources import resource_dir

_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class RenderError(Exception):
    """The document could not be made valid; the message says where."""


def xml_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _FORBIDDEN.sub("\ufffd", value)
    if isinstance(value, dict):
        return {k: xml_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [xml_safe(v) for v in value]
    return value


def cdata(text: str) -> Markup:
    return Markup("<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>")


class MailhookRenderer:
    """Compiles the template and the XSD once; `render` is safe to call from any thread."""

    def __init__(self) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(resource_dir("templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        env.filters["cdata"] = cdata
        self._template = env.get_template("mailhook.xml.j2")
        self._schema_doc = etree.parse(str(resource_dir("schemas") / "mailhook.xsd"))
        self._local = threading.local()  # lxml validators and parsers are per thread

    def render(self, ctx: HookContext) -> str:
        request = ctx.request
        data = xml_safe({
            "requester": request["requestedBy"],
            "approver": request["processedBy"] or "",
            "key": request["id"],
            "policy_code": request["policyCode"],
            "status": ctx.status,
            "timestamp": ctx.timestamp,
            "item": ctx.item,
            "audience": request["audience"] or "",
            "purpose": request["reason"] or "",
            "use_case": ctx.use_case,
            "extra": ctx.extra_information,
        })
        document = self._template.render(**data)
        self.validate(document)
        return document

    def _tools(self) -> tuple[etree.XMLSchema, etree.XMLParser]:
        tools = getattr(self._local, "tools", None)
        if tools is None:
            tools = (etree.XMLSchema(self._schema_doc),
                     etree.XMLParser(resolve_entities=False, no_network=True))
            self._local.tools = tools
        return tools

    def validate(self, document: str) -> None:
        schema, parser = self._tools()
        try:
            tree = etree.fromstring(document.encode("utf-8"), parser)
        except etree.XMLSyntaxError as exc:
            raise RenderError(f"not well-formed: {exc}") from None
        if not schema.validate(tree):
            raise RenderError(f"not valid against mailhook.xsd: {schema.error_log.last_error}")
