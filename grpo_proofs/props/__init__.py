"""One folder per result: its SymPy derivation, its numbers, its real-model runs and its registered claims."""
