"""What an evaluation writes and how it is read back: the typed per-sample record, the run reader, pricing."""
