"""Learned models: the stereo network, its training data and export."""
