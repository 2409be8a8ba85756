"""The 2015 TensorFlow Inception as a PyTorch network: its graph, weights (sources, formats, hashes), the TF1 resize, precision policies and the split-TF32 kernel."""
