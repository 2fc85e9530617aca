# LoRP: Locality-Aware Redundancy Pruning, and the depth-pruning baselines it is compared with.
#
#   snakemake --cores 2                      # the embedded default (config.yaml)
#   snakemake --cores 8 --configfile config/paper.yaml
#
# Stages (one .smk file per family, every stage a file under results/):
#   model -> calibration tokens -> activations -> similarity -> structure -> plans
#         -> evaluation (pruned models built in memory; checkpoints exported on request) -> summary
#   calibration tokens -> input norms -> outlier ratios -> sparsity plans -> sparse models -> evaluation
#   plans (+ activations or the model) -> recovery (patch, LoRA) -> evaluation of the recovered models
# Each rule declares its outputs, params and inputs in its .smk file; the config slices come from
# lorp.workflow.config, the methods from the registry in lorp.depth.methods.

from snakemake.utils import min_version

min_version("9.0")


# `snakemake --report report.html`: the figures and tables, with captions, one category per model
report: "report/workflow.rst"


# config.yaml is the default; a --configfile given on the command line replaces it entirely
# (Snakemake would otherwise merge the two, mixing the embedded default into every run).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/sources.smk"
include: "rules/model.smk"
include: "rules/calibration.smk"
include: "rules/activations.smk"
include: "rules/analysis.smk"
include: "rules/pruning.smk"
include: "rules/evaluation.smk"
include: "rules/recovery.smk"
include: "rules/summary.smk"
include: "rules/figures.smk"
include: "rules/sparsity.smk"
include: "rules/sensitivity.smk"


# Every rule with a script gets the fingerprint of the lorp code its jobs run as the param `code`.
add_code_params(workflow.rules)


rule all:
    """The tables, figures and exports of the config (final_outputs); Snakemake derives the rest."""
    input:
        final_outputs,
    default_target: True
    localrule: True
