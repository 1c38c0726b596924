"""The clickbait part of intentrank."""
