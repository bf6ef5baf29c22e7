"""Export: ONNX (dynamic batch and sequence axes), each export checked against its parent."""
