"""Layer 4: the meta model. Analyses of escalations with read-only tools (analysis.py), and chat (chat.py)."""
