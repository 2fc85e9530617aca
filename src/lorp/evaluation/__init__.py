"""Evaluation of dense and pruned models: perplexity, zero-shot tasks (lm-evaluation-harness) and efficiency."""
