"""Training data for the learned models: procedural synthetic pairs and real crops."""
