"""Core records and I/O: the schema every stage reads and writes, errors, settings loading, the
registries, sentence splitting, output writers, packed labels, the embedded sample."""
