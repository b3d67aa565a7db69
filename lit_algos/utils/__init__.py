"""Small shared helpers: atomic file writes, JSON I/O, code/hardware fingerprints."""

from lit_algos.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "read_json"]
