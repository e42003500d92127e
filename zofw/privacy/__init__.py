"""Privacy mathematics and bookkeeping, kept apart from the training loop."""
