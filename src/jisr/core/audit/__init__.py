"""Hash-chained, append-only audit records with signed checkpoints; see ``service``."""
