# Shared helpers: config validation, wildcard constraints, and what each of the rules takes from lorp
# its outputs (lorp.workflow.paths.RULES), its params (lorp.workflow.config.RULE_PARAMS), the inputs of a plan
# (the method registry), and the cluster resources of the stages that run a model.

import sys

from snakemake.exceptions import WorkflowError

# Jobs import the lorp package from this checkout, also inside conda environments and on cluster
# nodes, so the code that ran is always the code of this workflow.
_SRC = os.path.join(workflow.basedir, "src")
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")])))
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

import lorp.workflow.config as lc
import lorp.workflow.paths as paths
from lorp.io import read_json
from lorp.sparse.names import ALLOCATIONS, METRICS


def _shape_of(model):
    """Depth and context length of a model before any job runs: from its prepared model.json, else its
    metadata (GGUF, a local or cached config), else what the config gives (a hub model not in the cache);
    None where nothing is known."""
    manifest = paths.fill(paths.MODEL_MANIFEST, {"model": model})
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


def outputs(rule, **wrap):
    """The rule's outputs and provenance record from lorp.workflow.paths.RULES; directory outputs get
    directory(), and ``wrap`` maps an output name to a flag function (report, temp) applied to it."""
    files = paths.RULES[rule]
    out = {}
    for name, template in files.outputs.items():
        path = directory(template) if name in files.directories else template
        out[name] = wrap[name](path) if name in wrap else path
    out["provenance"] = files.provenance
    return out


def params(rule):
    """The rule's params, one per key of its config slice (lorp.workflow.config.RULE_PARAMS), and ``code``:
    the fingerprint of the lorp code its script reaches (lorp.workflow.fingerprint), so that a package edit
    reruns exactly the rules whose code changed."""
    keys = lc.rule_params(config, rule, _ANY_WILDCARDS)
    out = {key: (lambda wildcards, key=key: lc.rule_params(config, rule, wildcards)[key]) for key in keys}
    return {**out, **paths.code_params(rule)}


# wildcards under which every slice function can be called to learn its keys
_ANY_WILDCARDS = {"model": MODELS[0], "calib": next(iter(config["calibration"])), "method": METHODS[0],
                  "budget": str(BUDGETS[0]), "k": "2", "metric": "wanda", "allocation": "mrp", "target": "50"}


def in_report(caption, category="Across models", subcategory=None, **labels):
    """Flag a figure or table for `snakemake --report` with its caption (report/<caption>.rst) and labels."""
    return lambda path: report(path, caption=f"../report/{caption}.rst", category=category,
                               subcategory=subcategory, labels=labels)


def plan_inputs(wildcards):
    """What a plan reads: the inputs its method declares in the registry."""
    return paths.plan_inputs(wildcards.method, dict(wildcards.items()))


def all_cores(wildcards):
    """Every core of the run, so a timing job has the machine to itself (1 where no --cores is set,
    as for --unlock or --report)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def _n_parameters(model):
    """The parameter count from the prepared model's manifest (None before prepare_model ran)."""
    manifest = paths.fill(paths.MODEL_MANIFEST, {"model": model})
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
"""Resources of every job that loads the model, scaled with it (see the README's cluster section)."""

GPU_RESOURCES = {"gpu": 0 if lc.compute_params(config)["device"] == "cpu" else 1, **MODEL_RESOURCES}
"""Resources of the GPU stages (capture, pruning, checkpoints, evaluations): one GPU unless compute.device is cpu."""


def zeroshot_data(wildcards):
    """The task files read offline (so that a changed file reruns the task evaluations)."""
    import lorp.evaluation.zeroshot as lz

    zs = lc.zeroshot_params(config)
    if zs["data_dir"] is None:
        return []
    return [os.path.join(zs["data_dir"], lz.OFFLINE_FILES[t]) for t in zs["tasks"]]


def model_figure(figure):
    """Flag a per-model figure for the report, in its model's category and calibration's subcategory."""
    return in_report(figure, category="{model}", subcategory="{calib}", model="{model}", calibration="{calib}",
                     figure={"structure": "similarity and pruned layers", "pruned_layers": "pruned-layer map",
                             "sparsity": "per-block sparsity and redundancy"}[figure])


def pruned_outputs(rule, methods=METHODS, budgets=BUDGETS):
    """The output of ``rule`` (an evaluation of a plan) for every model, calibration, method and budget."""
    (template,) = paths.RULES[rule].outputs.values()
    return expand(template, model=MODELS, calib=lc.evaluated_views(config), method=methods, budget=budgets)


def sparse_outputs(rule):
    """The output of ``rule`` (an evaluation) for every sparse model: each method at its targets."""
    return [out for method, budget in lc.sparse_evaluations(config) for out in pruned_outputs(rule, [method], [budget])]


def all_pruned_outputs(rule):
    """The output of ``rule`` for every depth method at every budget and every sparse model."""
    return pruned_outputs(rule) + sparse_outputs(rule)


def per_row_plans(wildcards):
    """The plans of a model and calibration (of one metric, where the wildcards name it) whose
    redundancy after pruning is assessed: the per-row allocations, not the N:M patterns."""
    return paths.sparse_files(config, paths.SPARSE_PLAN, **dict(wildcards.items()), per_row=True)


REDUNDANCY_METRICS = SPARSE["metrics"] if SPARSE_TARGETS else []  # redundancy.json needs per-row plans


def evaluated_model(rule):
    """What an evaluation (``rule``) builds its pruned model from: the prepared model and a depth or a sparse
    plan; for ``auto``, also the same evaluation of its evaluated candidates, whose rows it copies."""

    def inputs(wildcards):
        w = dict(wildcards.items())
        return {**paths.evaluated_model(wildcards.method, w), **paths.reused_evaluations(config, rule, w)}

    return inputs


def sparse_scores(wildcards):
    """What a metric's scores need: the prepared model, and for Wanda the dense input norms."""
    return {"model": paths.MODEL_DIR, **({"norms": paths.NORMS} if wildcards.metric == "wanda" else {})}


def sparse_plan_inputs(wildcards):
    """uniform and N:M: the model's shapes; owl: the dense outlier ratios; mrp: the blocks' scores."""
    if wildcards.allocation == "owl":
        return {"outliers": paths.OUTLIERS}
    return sparse_scores(wildcards) if wildcards.allocation == "mrp" else {"model": paths.MODEL_DIR}


def sparse_prune_inputs(wildcards):
    """The model and plan, and for Wanda the dense norms or the calibration tokens (sequential norms)."""
    out = {"model": paths.MODEL_DIR, "plan": paths.SPARSE_PLAN}
    if wildcards.metric == "wanda":
        out.update({"norms": paths.NORMS} if SPARSE["norms"] == "dense" else {"tokens": paths.TOKENS})
    return out


def sparse_export_inputs(wildcards):
    """What a sparse checkpoint is rebuilt from: the model, the plan, its pruning norms and measurement."""
    return paths.evaluated_model(f"{wildcards.metric}-{wildcards.allocation}",
                                 {**dict(wildcards.items()), "budget": wildcards.target})


def efficiency_inputs(wildcards):
    """The prepared model and what every pruned model of it is built from (its efficiency job's entries)."""
    files = {"model": paths.MODEL_DIR}
    for i, (_, sources) in enumerate(paths.efficiency_entries(config, wildcards.model)):
        files.update({f"{key}_{i}": path for key, path in sources.items() if key != "model"})
    return files


def dense_outputs(rule):
    (template,) = paths.RULES[rule].outputs.values()
    return expand(template, model=MODELS)


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
