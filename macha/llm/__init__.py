"""Model backends, prompts and the schemas of model output."""
