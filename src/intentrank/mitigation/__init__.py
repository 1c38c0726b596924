"""The mitigation part of intentrank."""
