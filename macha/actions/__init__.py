"""Actions: the typed catalog, the autonomy policy, proposals, the executor and the approval queue."""
