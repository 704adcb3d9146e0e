"""Layer 2: the context the review model sees, always derived from the store."""
