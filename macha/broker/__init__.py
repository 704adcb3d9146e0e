"""The broker: a Redis server by URL, or the embedded one Macha runs itself."""
