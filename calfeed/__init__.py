"""calfeed: Launch Library 2 space events as subscribable iCalendar feeds."""

__version__ = "0.1.0"
