"""What every notification backend is: `send(recipient, message) -> None`, raising
`DeliveryError` when the message could not be handed over (the delivery log keeps its text)."""

from __future__ import annotations

from dataclasses import dataclass


class DeliveryError(Exception):
    """The backend could not hand the message over. `str()` goes into the delivery log, so it
    must say what went wrong without secrets (no credentials, no auth headers)."""


@dataclass(frozen=True)
class Message:
    """One notification, already rendered in the recipient's language."""

    channel: str  # alarms.notify.registry.CHANNELS key
    subject: str  # e-mail subject
    text: str  # the short form (SMS: one line)
    body: str  # the long form (e-mail)


class Notifier:
    """Base of the backends. Subclasses set `name` and implement `send`; those with settings
    override `from_settings` and `config_errors` (the latter feeds the system check, so a switch
    that is on but incomplete stops the processes at start-up instead of failing at 3 a.m.)."""

    name = ""

    @classmethod
    def from_settings(cls, settings) -> Notifier:
        return cls()

    @classmethod
    def config_errors(cls, settings) -> list[str]:
        return []

    def send(self, recipient: str, message: Message) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
