"""Experiments: the end-to-end main job (log → train → simulated A/B with an A/A arm)."""
