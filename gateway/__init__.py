"""Outbound SMTP gateway that keeps sellers' helpdesk mail within marketplace messaging policy."""

__version__ = "0.1.0"
