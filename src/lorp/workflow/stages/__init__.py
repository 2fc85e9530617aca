"""One function per workflow stage, in one module per family of rules (``rules/*.smk``): :mod:`.model`,
:mod:`.calibration`, :mod:`.depth`, :mod:`.sparse`, :mod:`.evaluation` and :mod:`.reports`.

A stage function reads the stage's inputs, calls the science in the ``lorp`` packages and writes the
outputs, every one atomically; the Snakemake scripts in ``scripts/`` only adapt the ``snakemake`` object
to these calls, and the functions are equally usable from Python or a notebook. The parameters each stage
receives are the config slices of :mod:`lorp.workflow.config`, with every default filled in by the schema:
no stage has defaults of its own. Heavy libraries (PyTorch, Transformers, pandas) are imported inside the
functions that use them.
"""
