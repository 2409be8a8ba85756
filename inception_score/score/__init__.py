"""The pure statistics: logits to split statistics to scores, the split plan, the order check, IS-infinity and the result. No network, no IO."""
