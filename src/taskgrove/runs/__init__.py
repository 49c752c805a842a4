"""Run folders on disk: the crash-safe store, the sample record format, and run summaries."""
