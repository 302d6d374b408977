"""After extraction: what a safety team files. Drug mentions normalised to substances (drugs),
reactions coded to MedDRA (meddra), assertion flags (assertion), the case-oriented export (cases)."""
