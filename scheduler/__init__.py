"""Reminder planning and outbox dispatch, driven by APScheduler."""
