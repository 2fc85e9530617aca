# LoRP: Locality-Aware Redundancy Pruning, and the depth-pruning baselines it is compared with.
#
#   snakemake --cores 2                      # the embedded default (config.yaml)
#   snakemake --cores 8 --configfile config/paper.yaml
#
# Stages (one .smk file per family, every stage a file under results/):
#   model -> calibration tokens -> activations -> similarity -> structure -> plans
#         -> checkpoints -> evaluation -> summary

from snakemake.utils import min_version

min_version("9.0")


# `snakemake --report report.html`: the figures and tables, with captions, one category per model
report: "report/workflow.rst"


# config.yaml is the default; a --configfile given on the command line replaces it entirely
# (Snakemake would otherwise merge the two, mixing the embedded default into every run).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/model.smk"
include: "rules/calibration.smk"
include: "rules/activations.smk"
include: "rules/analysis.smk"
include: "rules/pruning.smk"
include: "rules/evaluation.smk"
include: "rules/summary.smk"
include: "rules/figures.smk"


# Cheap stages run on the submit host, never as cluster jobs (see profiles/default/config.yaml).
localrules:
    all,
    structure,
    structure_fixed_k,
    plan,
    summary,
    summary_tasks,
    summary_efficiency,
    figure_structure,
    figure_pruned_layers,
    figure_locality,
    figure_vs_budget,
    k_ablation,


rule all:
    input:
        all_targets(),
    default_target: True
