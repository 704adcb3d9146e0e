"""Detection: the pattern catalog (data) and the triggers it raises."""
