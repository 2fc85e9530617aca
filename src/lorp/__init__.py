"""LoRP: Locality-Aware Redundancy Pruning of decoder blocks, and the baselines it is compared with.

The science lives in small pure modules (:mod:`lorp.depth.similarity`, :mod:`lorp.depth.structure`,
:mod:`lorp.depth.methods`, :mod:`lorp.depth.prune`, :mod:`lorp.evaluation.perplexity`); the modules of
:mod:`lorp.workflow.stages` wire them to files, one function per workflow stage.
"""

__version__ = "0.1.0"
