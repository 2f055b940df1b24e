"""Type stubs for ``dataqueue._core``, the Rust core of dataqueue."""

def batch_dep_ref(index: int) -> int:
    """Encode batch entry ``index`` as the placeholder id ``-(index + 1)``."""
