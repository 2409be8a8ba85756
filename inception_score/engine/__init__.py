"""Running the network over images: the scorer (network on a device), the device pipeline, the accumulators, the one scoring run every entry point feeds, and torch.distributed."""
