"""The ranking part of intentrank."""
