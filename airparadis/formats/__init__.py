"""Loaders of the built-in bundle formats, one module each; runtimes are imported lazily."""

from airparadis.formats import sklearn as sklearn

__all__ = ["sklearn"]
