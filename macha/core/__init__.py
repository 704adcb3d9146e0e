"""The vocabulary every layer speaks. Nothing here imports from the rest of macha: every other part may import it."""
