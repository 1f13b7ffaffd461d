"""The flash-worker version; fwrelease reads it for the release version."""

__version__ = "1.2.0"
