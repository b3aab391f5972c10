"""The package version (core: anything may import it without loading the api)."""
__version__ = "0.1.0"
