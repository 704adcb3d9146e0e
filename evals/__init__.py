"""The incident eval suite: realistic journals with known incidents, scored through the real detector."""
