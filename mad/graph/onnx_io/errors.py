"""Errors raised when reading an ONNX file into an ArchGraph or exporting one to ONNX."""

from __future__ import annotations


class OnnxImportError(ValueError):
    """An ONNX file cannot be read into an ArchGraph; the message names the file, node and op type."""


class OnnxExportError(RuntimeError):
    """Exporting a graph to ONNX failed, or the exported model disagrees with the module."""
