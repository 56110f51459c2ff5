"""One pane widget per module, each named after what it shows."""
