# Shared helpers: config validation, wildcard constraints, report flags, the cluster resources of the stages
# that run a model, and the code fingerprint every rule with a script gets as a param. Each rule declares its
# own outputs, params and inputs in its .smk file; the input functions of a family live beside its rules.

import sys

from snakemake.exceptions import WorkflowError

# Jobs import the lorp package from this checkout, also inside conda environments and on cluster
# nodes, so the code that ran is always the code of this workflow.
_SRC = os.path.join(workflow.basedir, "src")
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")])))
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

import lorp.workflow.config as lc
from lorp.io import read_json
from lorp.sparse.names import ALLOCATIONS, METRICS


def model_manifest(model):
    """The manifest inside prepare_model's output directory (read before any rule is declared)."""
    return os.path.join("results", model, "model", "model.json")


def fill(template, **wildcards):
    """A rule's output pattern (``rules.<name>.output.<key>``) with its wildcards replaced."""
    return str(template).format(**wildcards)


def _shape_of(model):
    """Depth and context length of a model before any job runs: from its prepared model.json, else its
    metadata (GGUF, a local or cached config), else what the config gives (a hub model not in the cache);
    None where nothing is known."""
    manifest = model_manifest(model)
    entry = config["models"][model]
    info = read_json(manifest) if os.path.exists(manifest) else {}
    if info.get("max_position_embeddings"):  # model.json files made before it was recorded lack it
        return lc.ModelShape(info["num_hidden_layers"], info["max_position_embeddings"])
    import lorp.models as lm  # imports torch: only until the model is prepared

    shape = lm.peek_shape(lm.resolve_source(entry["source"]))
    if shape:
        return lc.ModelShape(*shape)
    depth = info.get("num_hidden_layers") or entry["num_hidden_layers"]
    return lc.ModelShape(depth, entry["max_position_embeddings"]) if depth else None


# Every problem of the config, one per line, before any job runs; no traceback.
try:
    for warning in lc.check_config(config, _shape_of,
                                   schema_path=workflow.source_path("../schemas/config.schema.yaml")):
        print(f"warning: {warning}", file=sys.stderr)
except lc.ConfigError as err:
    print(err, file=sys.stderr)
    sys.exit(1)


MODELS = list(config["models"])
METHODS = list(config["methods"])
BUDGETS = sorted(config["budgets"])
ABLATION = lc.ablation_methods(config)  # lorp-k<K>: LoRP on a fixed-K clustering
SPARSE = config["sparsity"]
SPARSE_METHODS = lc.sparse_methods(config)  # <metric>-<allocation>, evaluated at budget = target (%)
SPARSE_TARGETS = lc.sparse_targets(config)
CALIBS = list(config["calibration"])


wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    calib="|".join(re.escape(c) for c in lc.views(config)),  # calibrations and their compared statistics
    method="|".join(re.escape(m) for m in METHODS + ABLATION + SPARSE_METHODS),
    k=r"\d+",
    budget=r"\d+",
    kind="ppl|tasks",
    metric="|".join(METRICS),
    allocation="|".join(ALLOCATIONS) + r"|\d+of\d+",  # N:M patterns are <N>of<M>
    target=r"\d+",


def in_report(caption, category="Across models", subcategory=None, **labels):
    """Flag a figure or table for `snakemake --report` with its caption (report/<caption>.rst) and labels."""
    return lambda path: report(path, caption=f"../report/{caption}.rst", category=category,
                               subcategory=subcategory, labels=labels)


def model_figure(figure):
    """Flag a per-model figure for the report, in its model's category and calibration's subcategory."""
    return in_report(figure, category="{model}", subcategory="{calib}", model="{model}", calibration="{calib}",
                     figure={"structure": "similarity and pruned layers", "pruned_layers": "pruned-layer map",
                             "sparsity": "per-block sparsity and redundancy"}[figure])


def all_cores(wildcards):
    """Every core of the run, so a timing job has the machine to itself (1 where no --cores is set,
    as for --unlock or --report)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def _n_parameters(model):
    """The parameter count from the prepared model's manifest (None before prepare_model ran)."""
    manifest = model_manifest(model)
    return read_json(manifest)["n_parameters"] if os.path.exists(manifest) else None


def _model_resource(wildcards, attempt, key, scaled):
    """models.<name>.resources.<key>, else ``scaled(n_parameters)`` (1B parameters assumed until the
    model is prepared); doubled on each retry."""
    res = config["models"][wildcards.model].get("resources") or {}
    if key in res:
        return res[key] * attempt
    return int(scaled(_n_parameters(wildcards.model) or 1_000_000_000)) * attempt


MODEL_RESOURCES = {
    "mem_mb": lambda wildcards, attempt: _model_resource(  # 8 GB plus 6 bytes per parameter
        wildcards, attempt, "mem_mb", lambda n: 8000 + 6 * n / 2**20),
    "runtime": lambda wildcards, attempt: _model_resource(  # 30 minutes plus 15 per billion parameters
        wildcards, attempt, "runtime", lambda n: 30 + 15 * n / 1e9),
}
"""Resources of every job that loads the model, scaled with it (see docs/cluster.md)."""

GPU_RESOURCES = {"gpu": 0 if lc.compute_params(config)["device"] == "cpu" else 1, **MODEL_RESOURCES}
"""Resources of the GPU stages (capture, pruning, checkpoints, evaluations): one GPU unless compute.device is cpu."""


def compute(wildcards):
    """The device and dtype every model-running stage's numbers depend on (compute.*)."""
    return lc.compute_params(config)


def add_code_params(rules_with_scripts):
    """Give every rule with a script the param ``code``: the fingerprint of the lorp code its script reaches,
    with the registrations its job's method, metric or allocation selects (lorp.workflow.fingerprint), so a
    package edit reruns exactly the jobs whose code changed. Called by the Snakefile once every rule is
    declared; the script comes from Snakemake's own rule object."""
    from lorp.workflow.fingerprint import job_code

    for declared in rules_with_scripts:
        if declared.script and "code" not in declared.params._names:
            script = os.path.normpath(os.path.join(str(declared.basedir), declared.script))
            declared.set_params(code=lambda wildcards, script=script: job_code(script, dict(wildcards.items())))


# Local runs: one server imports PyTorch and Transformers once, and each job runs in a fork of it
# (lorp.workflow.warm; LORP_WARM_START=0 turns it off). Not on a cluster, not in a dry run.
onstart:
    if workflow.local_exec and workflow.is_main_process and not workflow.touch:
        import lorp.workflow.warm

        lorp.workflow.warm.start()


onsuccess:
    import lorp.workflow.warm

    lorp.workflow.warm.stop()


onerror:
    import lorp.workflow.warm

    lorp.workflow.warm.stop()
