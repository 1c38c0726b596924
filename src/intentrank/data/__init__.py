"""Shipped public datasets and their typed, validated loaders (one module per dataset)."""

from intentrank.data.paths import DATA_DIR, dataset_path

__all__ = ["DATA_DIR", "dataset_path"]
