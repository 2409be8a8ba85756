"""Every input the package accepts, read into images: folders, archives, arrays, .npz files, decoding and its limits, and the one stream of batches the engine consumes."""
