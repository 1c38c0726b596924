"""The simulator part of intentrank."""
