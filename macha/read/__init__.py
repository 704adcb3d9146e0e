"""The one read layer: what the commands, the MCP server and the web dashboard show, as plain functions taking a
Store and returning typed (pydantic) results. No rendering and no Celery here; text in the results is as stored
(untrusted): each interface makes it safe for its reader (macha.core.text.printable for people)."""
