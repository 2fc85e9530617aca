"""Unstructured sparsity per layer: pruning metrics (Wanda, magnitude), per-row and N:M masks, and the
layer-wise allocations compared in MRP (uniform, OWL, MRP). Pure functions on tensors and arrays; the
workflow's sparse stages (:mod:`lorp.workflow.stages.sparse`, ``rules/sparsity.smk``) call them."""
