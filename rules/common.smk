# Shared helpers: config validation, wildcard constraints, the config slices each rule depends on.

import sys

from snakemake.exceptions import WorkflowError

# Jobs import the lorp package from this checkout, also inside conda environments and on cluster
# nodes, so the code that ran is always the code of this workflow.
_SRC = os.path.join(workflow.basedir, "src")
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")])))
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

import lorp.config as lc
from lorp.io import read_json


def _n_layers_of(model):
    """Depth of a model before any job runs: from a prepared model.json, the config, or metadata."""
    manifest = f"results/{model}/model/model.json"
    if os.path.exists(manifest):
        return read_json(manifest)["num_hidden_layers"]
    entry = config["models"][model]
    if entry.get("num_hidden_layers"):
        return entry["num_hidden_layers"]
    import lorp.models as lm  # imports torch: only when the depth is not known otherwise

    return lm.peek_num_layers(lm.resolve_source(entry["source"]))


lc.check_config(config, _n_layers_of, schema_path=workflow.source_path("../schemas/config.schema.yaml"))


MODELS = list(config["models"])
CALIBS = list(config["calibration"])
METHODS = list(config["methods"])
BUDGETS = sorted(config["budgets"])
ABLATION = lc.ablation_methods(config)  # lorp-k<K>: LoRP on a fixed-K clustering
ABLATION_BUDGETS = lc.ablation_budgets(config)


wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    calib="|".join(re.escape(c) for c in CALIBS),
    method="|".join(re.escape(m) for m in METHODS + ABLATION),
    k=r"\d+",
    budget=r"\d+",


def model_params(wildcards):
    entry = config["models"][wildcards.model]
    return {"source": entry["source"], "storage_dtype": entry.get("storage_dtype", "bfloat16")}


def calibration_params(wildcards):
    return lc.calibration_spec(config, wildcards.calib)


def activation_params(wildcards):
    return lc.activation_params(config, wildcards.model)


def eval_datasets(wildcards):
    return lc.evaluation_datasets(config, wildcards.model)


def method_params(wildcards):
    return lc.method_params(config, wildcards.method)


STRUCTURE_PARAMS = lc.structure_params(config)
COMPUTE = lc.compute_params(config)
EFFICIENCY_PARAMS = lc.efficiency_params(config)
ZEROSHOT_PARAMS = lc.zeroshot_params(config)
RUN_TASKS = bool(ZEROSHOT_PARAMS["tasks"])
RUN_EFFICIENCY = config["efficiency"]["enabled"]
FIGURE_BUDGET = config["figures"]["budget"] or max(BUDGETS)


def all_cores(wildcards):
    """Every core of the run, so a timing job has the machine to itself (1 where no --cores is set,
    as for --unlock or --report)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def _n_parameters(model):
    """The parameter count from the prepared model's manifest (None before prepare_model ran)."""
    manifest = f"results/{model}/model/model.json"
    return read_json(manifest).get("n_parameters") if os.path.exists(manifest) else None


def model_mem_mb(wildcards, attempt):
    """Host memory of a job that loads the model: models.<name>.resources.mem_mb, else 8 GB plus 6
    bytes per parameter (1B assumed until the model is prepared); doubled on each retry."""
    res = config["models"][wildcards.model].get("resources") or {}
    if "mem_mb" in res:
        return res["mem_mb"] * attempt
    n = _n_parameters(wildcards.model) or 1_000_000_000
    return int(8000 + 6 * n / 2**20) * attempt


def model_runtime(wildcards, attempt):
    """Minutes for a job that runs the model: models.<name>.resources.runtime, else 30 plus 15 per
    billion parameters; doubled on each retry."""
    res = config["models"][wildcards.model].get("resources") or {}
    if "runtime" in res:
        return res["runtime"] * attempt
    n = _n_parameters(wildcards.model) or 1_000_000_000
    return int(30 + 15 * n / 1e9) * attempt


def gpus(wildcards):
    """GPUs for the GPU stages (capture, checkpoint, evaluation): none when compute.device is cpu."""
    return 0 if COMPUTE["device"] == "cpu" else 1


def plan_inputs(wildcards):
    inputs = {
        "extended": f"results/{wildcards.model}/similarity/{wildcards.calib}/cosine_extended.npy",
        "last_token": f"results/{wildcards.model}/similarity/{wildcards.calib}/cosine_last_token.npy",
    }
    k = lc.ablation_k(wildcards.method)
    if k is not None:
        inputs["structure"] = f"results/{wildcards.model}/structure/{wildcards.calib}/rls-k{k}.json"
    elif wildcards.method == "lorp":
        inputs["structure"] = f"results/{wildcards.model}/structure/{wildcards.calib}/rls.json"
    return inputs


def maybe_temp(path):
    """Pruned checkpoints are deleted after evaluation when checkpoints.temporary is set."""
    return temp(path) if config["checkpoints"]["temporary"] else path


def zeroshot_data(wildcards):
    """The task files read offline (so that a changed file reruns the task evaluations)."""
    import lorp.zeroshot as lz

    if not RUN_TASKS or ZEROSHOT_PARAMS["data_dir"] is None:
        return []
    return [
        os.path.join(ZEROSHOT_PARAMS["data_dir"], lz.OFFLINE_FILES[t])
        for t in ZEROSHOT_PARAMS["tasks"]
    ]


def pruned_targets(name="ppl.csv"):
    return expand(
        "results/{model}/eval/{calib}/{method}-{budget}/{name}",
        name=name,
        model=MODELS,
        calib=CALIBS,
        method=METHODS,
        budget=BUDGETS,
    )


def summary_targets():
    targets = ["results/summary/ppl.csv", "results/summary/ppl.md"]
    if RUN_TASKS:
        targets += ["results/summary/tasks.csv", "results/summary/tasks.md"]
    if RUN_EFFICIENCY:
        targets += ["results/summary/efficiency.csv", "results/summary/efficiency.md"]
    return targets


def figure_targets():
    targets = [
        *expand(
            "results/{model}/figures/{calib}/{name}.png",
            model=MODELS,
            calib=CALIBS,
            name=["structure", "pruned_layers"],
        ),
        "results/figures/locality.png",
        "results/figures/ppl_vs_budget.png",
    ]
    if RUN_TASKS:
        targets.append("results/figures/tasks_vs_budget.png")
    if ABLATION:
        targets += ["results/summary/k_ablation.csv", "results/figures/k_ablation.png"]
    return targets


def all_targets():
    return [
        *summary_targets(),
        *figure_targets(),
        *expand(
            "results/{model}/similarity/{calib}/heatmap.png", model=MODELS, calib=CALIBS
        ),
        *expand("results/{model}/structure/{calib}/rls.json", model=MODELS, calib=CALIBS),
    ]
