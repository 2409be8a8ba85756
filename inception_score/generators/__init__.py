"""Generators as inputs: their files (torch.export programs; TorchScript and ONNX are read by
:func:`inception_score.load_generator_file`) and the checks on how they are run (training mode, output range)."""
