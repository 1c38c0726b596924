"""The store part of intentrank."""
