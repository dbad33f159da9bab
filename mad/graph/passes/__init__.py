"""Graph passes: rewrites of an ArchGraph that keep it valid (each pass in its own module)."""

from .canonicalize import canonicalize

__all__ = ["canonicalize"]
