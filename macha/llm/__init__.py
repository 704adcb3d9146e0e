"""Model backends, prompts, and the capped schema a model server is sent."""
