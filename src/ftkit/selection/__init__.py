"""Model selection before training: frozen features, transferability scores, ranking."""
