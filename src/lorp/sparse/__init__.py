"""Unstructured sparsity per layer: pruning metrics (Wanda, magnitude), per-row and N:M masks, and the
layer-wise allocations compared in MRP (uniform, OWL, MRP). Pure functions on tensors and arrays; the
workflow stages that capture input norms and write sparse checkpoints build on them (issue 11)."""
