"""Reading, validating and splitting data files."""
