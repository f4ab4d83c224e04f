"""The development default for e-mail: print the message on the worker's standard output."""

from __future__ import annotations

import sys
import threading

from alarms.notify.backends.base import DeliveryError, Message, Notifier

_lock = threading.Lock()  # one message's lines stay together when workers print at once


class ConsoleNotifier(Notifier):
    name = "console"

    def __init__(self, stream=None) -> None:
        self.stream = stream

    def send(self, recipient: str, message: Message) -> None:
        stream = self.stream or sys.stdout
        text = (
            f"--- notification ({message.channel}) to {recipient}\n"
            f"Subject: {message.subject}\n\n{message.body}\n---\n"
        )
        try:
            with _lock:
                stream.write(text)
                stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken stream
            raise DeliveryError(f"console: {exc}") from exc
