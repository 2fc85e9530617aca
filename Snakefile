# LoRP: Locality-Aware Redundancy Pruning, and the depth-pruning baselines it is compared with.
#
#   snakemake --cores 2                      # the embedded default (config.yaml)
#   snakemake --cores 8 --configfile config/paper.yaml
#
# Stages (one .smk file per family, every stage a file under results/):
#   model -> calibration tokens -> activations -> similarity -> structure -> plans
#         -> evaluation (pruned models built in memory; checkpoints exported on request) -> summary
#   calibration tokens -> input norms -> outlier ratios -> sparsity plans -> sparse models -> evaluation
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
include: "rules/model.smk"
include: "rules/calibration.smk"
include: "rules/activations.smk"
include: "rules/analysis.smk"
include: "rules/pruning.smk"
include: "rules/evaluation.smk"
include: "rules/summary.smk"
include: "rules/figures.smk"
include: "rules/sparsity.smk"
include: "rules/sensitivity.smk"


# Every rule with a script gets the fingerprint of the lorp code its jobs run as the param `code`.
add_code_params(workflow.rules)


def final_outputs(wildcards):
    """What the default target asks for: the tables, figures and exports the config implies; Snakemake
    derives every other job from them (python -m lorp.workflow.audit checks the same DAG)."""
    views = lc.evaluated_views(config)
    exported = lc.exported_checkpoints(config)
    out = [rules.summary.output.md, rules.figure_locality.output.png]
    out += expand(rules.figure_vs_budget.output.png, kind=["ppl"] + (["tasks"] if config["zeroshot"]["tasks"] else []))
    out += expand(rules.figure_structure.output.png, model=MODELS, calib=views)
    out += expand(rules.figure_pruned_layers.output.png, model=MODELS, calib=views)
    depth = [(m, b) for m in METHODS for b in BUDGETS] + [(m, b) for m in ABLATION for b in lc.ablation_budgets(config)]
    out += [fill(rules.prune_checkpoint.output.checkpoint, model=model, calib=calib, method=method, budget=budget)
            for model in MODELS for calib in CALIBS for method, budget in depth if f"{method}-{budget}" in exported]
    out += [fill(rules.sparse_checkpoint.output.checkpoint, model=model, calib=calib, metric=metric,
                 allocation=allocation, target=target)
            for model in MODELS for calib in CALIBS for metric, allocation, target in lc.sparse_plans(config)
            if f"{metric}-{allocation}-{target}" in exported]
    if config["zeroshot"]["tasks"]:
        out.append(rules.summary_tasks.output.md)
    if config["efficiency"]["enabled"]:
        out.append(rules.summary_efficiency.output.md)
    if lc.compared_statistics(config):
        out.append(rules.statistics.output.png)
    if lc.AUTO in METHODS:
        out.append(rules.summary_auto.output.md)
    if config["evaluation"]["seeds"]:
        out.append(rules.summary_seeds.output.md)
    if config["ablation"]["lorp_k"]:
        out.append(rules.k_ablation.output.png)
    if lc.sensitivity_enabled(config):
        out += expand(rules.sensitivity.output.rls_png, model=MODELS)
    if lc.sparse_plans(config):
        out += [rules.summary_sparsity.output.md, rules.figure_vs_sparsity.output.png]
        if lc.sweep_enabled(config):
            out += expand(rules.mrp_sweep.output.json, model=MODELS, calib=CALIBS, metric=SPARSE["metrics"])
        if SPARSE_TARGETS:
            out += expand(rules.figure_sparsity.output.png, model=MODELS, calib=CALIBS)
    return out


rule all:
    """The tables, figures and exports of the config (final_outputs); Snakemake derives the rest."""
    input:
        final_outputs,
    default_target: True
    localrule: True
