"""The only fakes in the tests: the LLM at its network edge (ollama.py) and a recording systemctl (systemctl.py)."""
