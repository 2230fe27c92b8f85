"""Loaders of the built-in bundle formats, one module each; runtimes are imported lazily."""

from airparadis.formats import onnx as onnx
from airparadis.formats import sklearn as sklearn
from airparadis.formats import tflite as tflite

__all__ = ["onnx", "sklearn", "tflite"]
