"""Training: config presets, datasets of pairs, the loop, resumable checkpoints."""
