"""INT8 with ONNX Runtime: presets per target, graph fusions, and the accuracy guard."""
