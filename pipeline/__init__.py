"""catalogmark: protect product photos before they go up on marketplaces."""

__version__ = "0.1.0"

# Bumped whenever a change alters output bytes for the same inputs; part of the rerun key.
PIPELINE_VERSION = "1"
