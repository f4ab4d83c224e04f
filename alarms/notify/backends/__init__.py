"""Notification backends (see `alarms.notify.registry.NOTIFIERS`). Each module holds one
`Notifier` subclass; `base` holds what they share."""
