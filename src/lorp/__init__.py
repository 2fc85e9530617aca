"""LoRP: Locality-Aware Redundancy Pruning of decoder blocks, and the baselines it is compared with.

The science lives in small pure modules (:mod:`lorp.similarity`, :mod:`lorp.structure`,
:mod:`lorp.methods`, :mod:`lorp.prune`, :mod:`lorp.evaluate`); :mod:`lorp.pipeline` wires them
to files, one function per workflow stage.
"""

__version__ = "0.1.0"
