"""Pure builders of kernel commands (no I/O) and parsers of kernel output."""
