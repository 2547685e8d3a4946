"""The five pipeline stages: ingest, watermark, fingerprint, export, hashrecord (the runner knows the order)."""
