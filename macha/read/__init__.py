"""What the interfaces read (the commands, the web dashboard, the MCP server): plain functions taking a Store and
returning typed (pydantic) results."""
