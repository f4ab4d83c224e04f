"""E-mail through Django's mail framework: `EMAIL_BACKEND`, `EMAIL_HOST` ... as configured for
the site; the sender is `NOTIFY_EMAIL_FROM` (default `DEFAULT_FROM_EMAIL`)."""

from __future__ import annotations

import smtplib

from django.core.mail import EmailMessage

from alarms.notify.backends.base import DeliveryError, Message, Notifier


class EmailNotifier(Notifier):
    name = "email"

    def __init__(self, from_email: str) -> None:
        self.from_email = from_email

    @classmethod
    def from_settings(cls, settings) -> EmailNotifier:
        return cls(getattr(settings, "NOTIFY_EMAIL_FROM", "") or settings.DEFAULT_FROM_EMAIL)

    def send(self, recipient: str, message: Message) -> None:
        email = EmailMessage(
            subject=message.subject, body=message.body, from_email=self.from_email, to=[recipient]
        )
        try:
            sent = email.send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"e-mail: {exc.__class__.__name__}: {exc}") from exc
        if sent != 1:
            raise DeliveryError("e-mail: the mail backend accepted no message")
