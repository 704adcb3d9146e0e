"""Layer 3: the review of a host's pending events. The rules reviewer (rules.py), the review model's turn
(model_turn.py: prompt, validation, repair) and the run that chooses between them and stores the review (run.py)."""
