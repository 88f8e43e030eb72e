"""The package version (one place; ``toonsync.__version__`` and ``toonsync --version`` read it)."""

__version__ = "0.1.0"
