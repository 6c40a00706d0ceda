"""MedSpace: a trusted data space for hospitals. Raw records never leave their node."""

__version__ = "0.1.0"
