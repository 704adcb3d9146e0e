"""Semantic memory (Chroma): past issues, decisions and the hosts' NixOS configuration, recalled by meaning.

One job per module, importers name the module they use:

- errors: MemoryUnavailable, and the guard that turns Chroma, ONNX and HTTP errors into it
- embeddings: the offline ONNX all-MiniLM-L6-v2 assembled from PyPI packages, and Ollama's /api/embed
- backend: the Chroma client per process and location, its file lock and re-open after another process wrote
- metadata: what Chroma takes as metadata values
- store: the six collections and their generic operations (remember, similar, count)
- recall: reviews written to issues and decisions, and similar past issues for the window
- config_index: the hosts' *.nix files, indexed in chunks
- opening: Memory (all of the above) opened once per process, and closed
"""
