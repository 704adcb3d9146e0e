"""The MCP server (macha-mcp): Macha's context and tools for other AI assistants, over streamable HTTP with a
bearer token, or stdio. An interface beside macha/cli: it reads through macha.read and proposes through
macha.actions, like the commands."""
