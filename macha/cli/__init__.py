"""Command-line interfaces: thin skins over the same functions the workers call."""
