"""Ingestion: per-insurer layouts mapped into the canonical record contract."""
