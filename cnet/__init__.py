"""cnet: Docker-style bridge networking for Linux processes on one host."""

__version__ = "0.1.0"
