"""Models leaving the service: every backend's trained model as one dense stack, and that stack as an ONNX graph."""
