"""Applications on top of the pipeline's students: serve (HTTP), screen (PubMed screening tables
and report), review (Label Studio), rank (models by quality, speed, size and cost)."""
