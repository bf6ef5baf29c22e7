"""INT8 per target: ONNX Runtime (presets, graph fusions, the accuracy guard), Neural
Compressor and OpenVINO; and the low-bit word table (embeddings/)."""
