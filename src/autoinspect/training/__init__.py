"""Training backends behind one interface; each exports an ONNX detector that follows the model contract."""
