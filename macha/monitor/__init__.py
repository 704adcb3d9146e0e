"""Layer 1, the trigger monitor: collect/ reads the machine, detect/ judges what it read, checks/ runs a check of
one host (journal, metrics, services) and stores what it found."""
