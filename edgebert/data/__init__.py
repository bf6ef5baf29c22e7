"""Task data: loading, splitting and encoding for every supported head."""
