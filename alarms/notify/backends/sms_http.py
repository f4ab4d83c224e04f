"""SMS through an HTTP gateway (the JSON-over-HTTPS APIs Chinese SMS providers offer).

Settings (all read at send time; the system check refuses an incomplete set while this backend
is in use):
- `NOTIFY_SMS_HTTP_URL`: where to POST (http:// or https://).
- `NOTIFY_SMS_HTTP_AUTH_HEADER`: one header `Name: value` sent with every request, e.g.
  `Authorization: Bearer <key>` (optional; never written to the delivery log).
- `NOTIFY_SMS_HTTP_BODY`: a JSON document; in its strings `${phone}`, `${text}` and `${subject}`
  are replaced (after parsing, so any character in the text stays valid JSON). Default
  `{"phone": "${phone}", "text": "${text}"}`.
- `NOTIFY_SMS_HTTP_TIMEOUT_S`: seconds to wait for the gateway.

Any 2xx answer counts as accepted; anything else, a timeout or a connection error is a
`DeliveryError` with the status and the start of the gateway's answer.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from string import Template
from urllib.parse import urlsplit

from alarms.notify.backends.base import DeliveryError, Message, Notifier

DEFAULT_BODY = '{"phone": "${phone}", "text": "${text}"}'
PLACEHOLDERS = frozenset({"phone", "text", "subject"})
REQUIRED_PLACEHOLDERS = ("phone", "text")
ANSWER_SNIPPET = 200  # characters of a refusing gateway's answer kept in the log


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _fill(value, mapping: dict[str, str]):
    if isinstance(value, str):
        return Template(value).safe_substitute(mapping)
    if isinstance(value, dict):
        return {k: _fill(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, mapping) for v in value]
    return value


def _header(raw: str) -> tuple[str, str] | None:
    name, sep, value = raw.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value or any(c in name for c in " \t\r\n") or "\n" in value:
        return None
    return name, value


class HttpSmsNotifier(Notifier):
    name = "sms_http"

    def __init__(
        self, *, url: str, body_template: str, auth_header: str = "", timeout: float = 5.0
    ) -> None:
        self.url = url
        self.template = json.loads(body_template)
        self.auth = _header(auth_header) if auth_header else None
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings) -> HttpSmsNotifier:
        errors = cls.config_errors(settings)
        if errors:
            raise DeliveryError("; ".join(errors))
        return cls(
            url=settings.NOTIFY_SMS_HTTP_URL,
            body_template=getattr(settings, "NOTIFY_SMS_HTTP_BODY", "") or DEFAULT_BODY,
            auth_header=getattr(settings, "NOTIFY_SMS_HTTP_AUTH_HEADER", ""),
            timeout=float(getattr(settings, "NOTIFY_SMS_HTTP_TIMEOUT_S", 5.0)),
        )

    @classmethod
    def config_errors(cls, settings) -> list[str]:
        errors = []
        url = getattr(settings, "NOTIFY_SMS_HTTP_URL", "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            errors.append("NOTIFY_SMS_HTTP_URL must be the gateway's http:// or https:// URL")
        auth = getattr(settings, "NOTIFY_SMS_HTTP_AUTH_HEADER", "")
        if auth and _header(auth) is None:
            errors.append("NOTIFY_SMS_HTTP_AUTH_HEADER must look like 'Name: value'")
        raw = getattr(settings, "NOTIFY_SMS_HTTP_BODY", "") or DEFAULT_BODY
        try:
            template = json.loads(raw)
        except ValueError as exc:
            errors.append(f"NOTIFY_SMS_HTTP_BODY is not valid JSON: {exc}")
        else:
            used = {
                name for text in _strings(template) for name in Template(text).get_identifiers()
            }
            unknown = used - PLACEHOLDERS
            missing = [p for p in REQUIRED_PLACEHOLDERS if p not in used]
            if unknown:
                errors.append(
                    "NOTIFY_SMS_HTTP_BODY uses unknown placeholders: "
                    + ", ".join(f"${{{p}}}" for p in sorted(unknown))
                )
            if missing:
                errors.append(
                    "NOTIFY_SMS_HTTP_BODY must contain "
                    + " and ".join(f"${{{p}}}" for p in missing)
                )
        try:
            timeout = float(getattr(settings, "NOTIFY_SMS_HTTP_TIMEOUT_S", 5.0))
        except (TypeError, ValueError):
            timeout = 0.0
        if not timeout > 0:
            errors.append("NOTIFY_SMS_HTTP_TIMEOUT_S must be a positive number of seconds")
        return errors

    def body_for(self, recipient: str, message: Message) -> bytes:
        mapping = {"phone": recipient, "text": message.text, "subject": message.subject}
        return json.dumps(_fill(self.template, mapping), ensure_ascii=False).encode("utf-8")

    def send(self, recipient: str, message: Message) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.auth is not None:
            headers[self.auth[0]] = self.auth[1]
        # The scheme is checked (http / https only) by config_errors before we get here.
        request = urllib.request.Request(  # noqa: S310
            self.url, data=self.body_for(recipient, message), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read(ANSWER_SNIPPET)
        except urllib.error.HTTPError as exc:
            answer = exc.read(ANSWER_SNIPPET).decode("utf-8", "replace").strip()
            raise DeliveryError(f"SMS gateway answered HTTP {exc.code}: {answer}") from exc
        except urllib.error.URLError as exc:
            raise DeliveryError(f"SMS gateway unreachable: {exc.reason}") from exc
        except TimeoutError as exc:
            raise DeliveryError(f"SMS gateway gave no answer within {self.timeout:g} s") from exc
        except OSError as exc:
            raise DeliveryError(f"SMS gateway: {exc}") from exc
