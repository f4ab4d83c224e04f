"""Notification backends: console, file, e-mail (Django's mail), SMS over HTTP (against a fake
gateway on the loopback: the outbound HTTP is the only thing stood in for), and the system check
that refuses a backend switched on with incomplete settings."""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from alarms.notify.backends.base import DeliveryError, Message
from alarms.notify.backends.console import ConsoleNotifier
from alarms.notify.backends.file import FileNotifier
from alarms.notify.backends.mail import EmailNotifier
from alarms.notify.backends.sms_http import HttpSmsNotifier
from alarms.notify.checks import check_notification_settings
from alarms.notify.registry import NOTIFIERS, notifier_class, notifier_for

MESSAGE = Message(
    channel="sms",
    subject="[carloan] critical alarm: SOS, 陕A12345",
    text='carloan: 陕A12345 SOS "quoted" at 2026-11-22 16:00',
    body="Alarm: SOS\nVehicle: 陕A12345\n",
)


def test_every_registered_backend_loads_and_is_a_notifier():
    for name in NOTIFIERS:
        cls = notifier_class(name)
        assert cls.name == name and callable(cls.send)


def test_console_prints_the_message():
    out = io.StringIO()
    ConsoleNotifier(stream=out).send("13800138000", MESSAGE)
    assert "to 13800138000" in out.getvalue()
    assert "Vehicle: 陕A12345" in out.getvalue()


def test_file_appends_one_json_line_per_message(tmp_path, settings):
    settings.NOTIFY_SMS_BACKEND = "file"
    settings.NOTIFY_FILE_DIR = str(tmp_path / "notes")
    notifier = notifier_for("sms")
    notifier.send("13800138000", MESSAGE)
    notifier.send("13900139000", MESSAGE)
    lines = (tmp_path / "notes" / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["to"] for line in lines] == ["13800138000", "13900139000"]
    assert json.loads(lines[0])["text"] == MESSAGE.text


def test_file_reports_an_unwritable_directory(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(DeliveryError, match="file:"):
        FileNotifier(blocker / "sub").send("1", MESSAGE)


def test_email_goes_through_djangos_mail_backend(settings):
    settings.NOTIFY_EMAIL_FROM = "alarms@carloan.example"
    EmailNotifier.from_settings(settings).send("ops@lender.example", MESSAGE)
    [sent] = mail.outbox
    assert (sent.to, sent.from_email, sent.subject) == (
        ["ops@lender.example"],
        "alarms@carloan.example",
        MESSAGE.subject,
    )
    assert sent.body == MESSAGE.body


def test_email_failure_is_a_delivery_error(settings):
    # A closed port on the loopback: the SMTP connection is refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    with pytest.raises(DeliveryError, match="e-mail: ConnectionRefusedError"):
        EmailNotifier("alarms@carloan.example").send("ops@lender.example", MESSAGE)


# --- SMS over HTTP -------------------------------------------------------------------------------
class FakeGateway:
    """An SMS gateway on the loopback that records requests and answers as told."""

    def __init__(self, status=200, answer=b'{"code": 0}', delay=0.0):
        self.requests: list[dict] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                gateway.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sms_settings(settings):
    settings.NOTIFY_SMS_BACKEND = "sms_http"
    settings.NOTIFY_SMS_HTTP_AUTH_HEADER = "Authorization: Bearer s3cret"
    settings.NOTIFY_SMS_HTTP_BODY = (
        '{"mobile": "${phone}", "content": "${text}", "sign": "carloan", "tags": ["${subject}"]}'
    )
    settings.NOTIFY_SMS_HTTP_TIMEOUT_S = 2
    return settings


def test_sms_posts_the_filled_template_with_the_auth_header(sms_settings):
    with FakeGateway() as gateway:
        sms_settings.NOTIFY_SMS_HTTP_URL = gateway.url
        notifier_for("sms").send("13800138000", MESSAGE)
    [request] = gateway.requests
    assert request["path"] == "/sms/send"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"].startswith("application/json")
    # Quotes and non-ASCII in the text stay valid JSON: the template is filled after parsing.
    assert json.loads(request["body"]) == {
        "mobile": "13800138000",
        "content": MESSAGE.text,
        "sign": "carloan",
        "tags": [MESSAGE.subject],
    }


def test_sms_refused_by_the_gateway_logs_status_and_answer(sms_settings):
    with FakeGateway(status=403, answer=b'{"error": "balance exhausted"}') as gateway:
        sms_settings.NOTIFY_SMS_HTTP_URL = gateway.url
        with pytest.raises(DeliveryError) as caught:
            notifier_for("sms").send("13800138000", MESSAGE)
    assert "HTTP 403" in str(caught.value) and "balance exhausted" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_sms_gateway_down_or_slow_is_a_delivery_error(sms_settings):
    sms_settings.NOTIFY_SMS_HTTP_URL = "http://127.0.0.1:1/sms"
    with pytest.raises(DeliveryError, match="unreachable"):
        notifier_for("sms").send("13800138000", MESSAGE)
    sms_settings.NOTIFY_SMS_HTTP_TIMEOUT_S = 0.3
    with FakeGateway(delay=1.0) as gateway:
        sms_settings.NOTIFY_SMS_HTTP_URL = gateway.url
        with pytest.raises(DeliveryError, match="0.3 s|timed out"):
            notifier_for("sms").send("13800138000", MESSAGE)


def test_a_backend_with_incomplete_settings_refuses_to_send(sms_settings):
    sms_settings.NOTIFY_SMS_HTTP_URL = ""
    with pytest.raises(DeliveryError, match="NOTIFY_SMS_HTTP_URL"):
        HttpSmsNotifier.from_settings(sms_settings)


# --- System checks -------------------------------------------------------------------------------
def problems() -> list[tuple[str, str]]:
    return [(m.id, m.msg) for m in check_notification_settings()]


def test_the_defaults_pass_the_check():
    assert problems() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"NOTIFY_SMS_HTTP_URL": ""}, "NOTIFY_SMS_HTTP_URL must be"),
        ({"NOTIFY_SMS_HTTP_URL": "ftp://gw.example/send"}, "NOTIFY_SMS_HTTP_URL must be"),
        ({"NOTIFY_SMS_HTTP_BODY": '{"to": "${phone}"'}, "not valid JSON"),
        ({"NOTIFY_SMS_HTTP_BODY": '{"to": "${phone}"}'}, "must contain ${text}"),
        ({"NOTIFY_SMS_HTTP_BODY": '{"a": "${phone} ${text} ${pin}"}'}, "unknown placeholders"),
        ({"NOTIFY_SMS_HTTP_AUTH_HEADER": "Bearer abc"}, "'Name: value'"),
        ({"NOTIFY_SMS_HTTP_TIMEOUT_S": 0}, "positive number"),
    ],
)
def test_sms_over_http_switched_on_but_incomplete_is_an_error(sms_settings, changes, expected):
    sms_settings.NOTIFY_SMS_HTTP_URL = "https://sms.example/send"
    for name, value in changes.items():
        setattr(sms_settings, name, value)
    [(code, text)] = problems()
    assert code == "alarms.E002" and expected in text


def test_other_setting_mistakes_are_reported(settings):
    settings.NOTIFY_EMAIL_BACKEND = "pigeon"
    settings.NOTIFY_DELIVERY = "later"
    settings.NOTIFY_RATE_LIMIT = 0
    settings.ALARM_MAP_URL = "https://maps.example/?q={latitude}"
    assert [code for code, _text in problems()] == [
        "alarms.E001",
        "alarms.E003",
        "alarms.E004",
        "alarms.E005",
    ]


def test_startup_fails_fast_with_an_incomplete_sms_gateway(sms_settings):
    sms_settings.NOTIFY_SMS_HTTP_URL = ""
    with pytest.raises(SystemCheckError, match="alarms.E002"):
        call_command("check")
