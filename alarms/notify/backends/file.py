"""The development default for SMS: append each message as one JSON line to
`NOTIFY_FILE_DIR/<channel>.jsonl` (default var/notifications/), to read or `tail -f`."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from django.utils import timezone

from alarms.notify.backends.base import DeliveryError, Message, Notifier

_lock = threading.Lock()


def _directory(settings) -> Path:
    configured = getattr(settings, "NOTIFY_FILE_DIR", "")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "notifications"


class FileNotifier(Notifier):
    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls, settings) -> FileNotifier:
        return cls(_directory(settings))

    @classmethod
    def config_errors(cls, settings) -> list[str]:
        directory = _directory(settings)
        existing = next((p for p in (directory, *directory.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
            return [f"NOTIFY_FILE_DIR: cannot create or write {directory}"]
        return []

    def path_for(self, channel: str) -> Path:
        return self.directory / f"{channel}.jsonl"

    def send(self, recipient: str, message: Message) -> None:
        line = json.dumps(
            {
                "at": timezone.now().isoformat(),
                "channel": message.channel,
                "to": recipient,
                "subject": message.subject,
                "text": message.text,
                "body": message.body,
            },
            ensure_ascii=False,
        )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with _lock, self.path_for(message.channel).open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        except OSError as exc:
            raise DeliveryError(f"file: {exc}") from exc
