"""newsletter: structured issues in, responsive email out, delivered exactly once."""

__version__ = "0.1.0"
