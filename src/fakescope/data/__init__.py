"""Datasets: manifests, layout readers, face extraction."""
from .manifest import COLUMNS, Manifest, ManifestError, Sample

__all__ = ["COLUMNS", "Manifest", "ManifestError", "Sample"]
