"""Depth pruning: inter-layer similarity, the structure of layers (RLS, clusters), the method
registry with LoRP and its baselines, and the removal of decoder blocks."""
