# Shared helpers: config validation, wildcard constraints, report flags, the cluster resources of the stages
# that run a model, the code fingerprint every rule with a script gets as a param, the input functions of
# each family of rules (one section per rules/*.smk file) and the default target's list. Each rule declares
# its own outputs, params and inputs in its .smk block; the functions here only compute inputs from the
# config and other rules' outputs (rules.<name>.output.<key>), evaluated when the DAG is built.

import sys

from snakemake.exceptions import WorkflowError

# Jobs import the lorp package from this checkout, also inside conda environments and on cluster
# nodes, so the code that ran is always the code of this workflow.
_SRC = os.path.join(workflow.basedir, "src")
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")])))
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

import lorp.workflow.config as lc
from lorp.depth.methods import AUTO, get_method
from lorp.io import read_json
from lorp.sparse.names import ALLOCATIONS, METRICS, parse_method, parse_nm
from lorp.sparse.allocation_plans import get_allocation
from lorp.sparse.metrics import get_metric
from lorp.workflow.jobs import ENTRY_SEPARATOR, REUSED_PREFIX
from lorp.recovery.registry import RECOVERIES, get_recovery, recovered_name


def model_manifest(model):
    """The manifest inside prepare_model's output directory (read before any rule is declared)."""
    return os.path.join("results", model, "model", "model.json")


def fill(template, **wildcards):
    """A rule's output pattern (``rules.<name>.output.<key>``) with its wildcards replaced."""
    return str(template).format(**wildcards)


def _shape_of(model):
    """Depth and context length of a model before any job runs, once its source is known to exist (every
    run, whether or not the model was prepared): lc.model_shape, from its prepared model.json."""
    entry = config["models"][model]
    return lc.model_shape(entry, model_manifest(model))


# Every problem of the config, one per line, before any job runs; no traceback. A cluster job (the workflow
# parsed again on its node) only fills the defaults in: the run that submitted it checked the rest, and a
# compute node need not reach the hub or the corpus files' first records again.
try:
    if workflow.remote_exec:
        lc.validate_schema(config, workflow.source_path("../schemas/config.schema.yaml"))
    else:
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
RECOVERED = lc.recovered_models(config)  # (method, budget, recovery) of every recovered model


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
    recovery="|".join(re.escape(r) for r in RECOVERIES),


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
    """Give each rule that has a script the param ``code``, the fingerprint of the lorp code its script reaches,
    with the registrations its job's method, metric or allocation selects (none for the dense model's
    rules, <name>_dense; lorp.workflow.fingerprint), so a
    package edit reruns exactly the jobs whose code changed. Called by the Snakefile once every rule is
    declared; the script comes from Snakemake's own rule object. Not fetch_source (a source's record is
    named by the source, and only a missing record fetches it; see the note above model_source)."""
    from lorp.workflow.fingerprint import job_code

    for declared in rules_with_scripts:
        if declared.script and "code" not in declared.params._names and declared.name != "fetch_source":
            script = os.path.normpath(os.path.join(str(declared.basedir), declared.script))
            declared.set_params(code=lambda wildcards, script=script, rule=declared.name:
                                job_code(script, dict(wildcards.items()), rule=rule))


# ---------------------------------------------------------------- input functions of rules/calibration.smk
SOURCES = lc.source_entries(config)  # digest -> what fetch_source checks and fetches


def source_entry(digest):
    """The model or corpus a fetch_source job checks, by the digest in its output's name."""
    return SOURCES[digest]


def _local_file(entry):
    """A corpus entry's local file, as a list (empty for a bundled or hub corpus)."""
    path = lc.local_corpus_file(entry)
    return [] if path is None else [str(path)]


# Files from outside the workflow count by their bytes, not their times: each is an ancient() input (it must
# exist; a cluster stages it), and its sha256 decides: a local corpus's is part of its source's record name
# (lc.source_entry), the zero-shot files' and LoRA's training file's is the `contents` param of the jobs that
# read them (task evaluations, recover). So an edit reruns what reads the file, and a copy or touch with the
# same bytes (the data synced again, the package reinstalled) reruns nothing (docs/reruns.md).
def by_content(files):
    """``files`` as inputs whose times do not count (their bytes do)."""
    return [ancient(f) for f in files]


def contents(input_function):
    """The `contents` param for the files ``input_function`` returns by content, as [name, sha256] of
    each file, by its name only, so that the same files elsewhere (another checkout, the audit's) agree."""
    from lorp.workflow.fingerprint import file_digests

    return lambda wildcards: [[os.path.basename(path), digest]
                              for path, digest in file_digests(str(f) for f in input_function(wildcards)).items()]


def local_corpus(wildcards):
    """A corpus in a local file is the fetch_source job's input."""
    return by_content(_local_file(SOURCES[wildcards.digest]))


# A source's record is named by the source (a local corpus by its bytes too), and the jobs that read the
# source take it as an ordinary input; fetch_source has no code param, so only a missing record (a new source,
# an edited file, a deleted record) runs it, and then everything that reads the source runs after it. (Records
# taken as ancient() inputs would let a fetch_source job rerun alone, but Snakemake 9 then skips every job
# after it in that invocation, forced ones included: snakemake/snakemake#4166. docs/reruns.md.)
def model_source(wildcards):
    """The record of the model's source: prepare_model runs once it was checked and fetched."""
    return lc.source_record(lc.source_entry("model", config["models"][wildcards.model]))


def _calibration_entry(wildcards):
    return lc.source_entry("corpus", lc.calibration_spec(config, wildcards.calib), "calibration")


def calibration_source(wildcards):
    """The record of the calibration view's corpus."""
    return lc.source_record(_calibration_entry(wildcards))


def calibration_corpus(wildcards):
    """The calibration view's corpus file, if it is a local one."""
    return by_content(_local_file(_calibration_entry(wildcards)))


def _dataset_entries(wildcards):
    return [lc.source_entry("corpus", spec, "evaluation")
            for spec in lc.evaluation_datasets(config, wildcards.model).values()]


def dataset_sources(wildcards):
    """The records of the evaluation datasets."""
    return [lc.source_record(entry) for entry in _dataset_entries(wildcards)]


def dataset_corpora(wildcards):
    """The evaluation datasets' local files."""
    return by_content(path for entry in _dataset_entries(wildcards) for path in _local_file(entry))


def tokens_of(wildcards):
    """The calibration tokens a view reads: those of the first view with the same calibration spec."""
    return fill(rules.calibration_tokens.output.tokens, model=wildcards.model,
                calib=lc.token_source(config, wildcards.calib))


# ---------------------------------------------------------------- input functions of rules/pruning.smk
def previous_plan(wildcards):
    """A greedy method's plan at one block fewer (the `previous` input), whichever budgets the config lists,
    so that adding or dropping a budget changes no plan's inputs; none at budget 1."""
    budget = int(wildcards.budget)
    return [] if budget <= 1 else fill(rules.plan.output.plan, **{**dict(wildcards.items()), "budget": budget - 1})


def plan_input_files():
    """The file behind each input a method may declare (lorp.depth.methods.Method.inputs): a rule's output
    pattern, or for the calibration tokens and the previous plan the function that names the file."""
    return {"extended": rules.similarity.output.extended, "last_token": rules.similarity.output.last_token,
            "structure": rules.structure.output.rls, "model": rules.prepare_model.output.model,
            "tokens": tokens_of, "previous": previous_plan}


def plan_inputs(wildcards):
    """What a plan reads: the inputs its method declares in the registry (lorp-k<K> reads the fixed-K
    clustering instead of rls.json)."""
    k = lc.ablation_k(wildcards.method)
    out = {}
    for name in get_method(lc.base_method(wildcards.method)).inputs:
        template = rules.structure_fixed_k.output.rls if name == "structure" and k is not None else plan_input_files()[name]
        out[name] = template(wildcards) if callable(template) else fill(template, model=wildcards.model,
                                                                         calib=wildcards.calib, k=k)
    return {name: path for name, path in out.items() if path}


def plan_methods(runs_model):
    """The wildcard constraint of the methods whose plans run the model (rule model_plan) or read stored
    files (rule plan, with the K ablation's lorp-k<K>), from their registrations; one that matches no
    name where there are none."""
    names = lc.model_methods(config) if runs_model else lc.similarity_methods(config) + ABLATION
    return "|".join(re.escape(m) for m in names) or "(?!)"

def auto_inputs(wildcards):
    """What the auto plan of a view at a budget reads: the prepared model, the held-out windows and every
    candidate plan (lorp.workflow.config.auto_candidates, in that order)."""
    w = dict(wildcards.items())
    return {"model": fill(rules.prepare_model.output.model, **w),
            "held_out": fill(rules.held_out_tokens.output.tokens, **w),
            "plans": [fill(rules.plan.output.plan, **{**w, "calib": c["view"], "method": c["method"]})
                      for c in lc.auto_candidates(config, wildcards.calib)]}


# ---------------------------------------------------------------- input functions of rules/evaluation.smk
def model_sources(method, **wildcards):
    """What a pruned model ``{method}-{budget}`` is built from in memory: the prepared model and a depth plan,
    or for a sparse method (``wanda-mrp``, budget = target in %) its sparse plan, the norms its blocks were
    pruned with, their measurement and the pruned weights (SparseGPT's; an empty file for a metric that masks)."""
    w = {**wildcards, "method": method}
    sparse = parse_method(method)
    if sparse is None:
        return {"model": fill(rules.prepare_model.output.model, **w), "plan": fill(rules.plan.output.plan, **w)}
    w.update(metric=sparse[0], allocation=sparse[1], target=w["budget"])
    return {"model": fill(rules.prepare_model.output.model, **w), "plan": fill(rules.sparse_plan.output.plan, **w),
            "pruning": fill(rules.sparse_prune.output.norms, **w), "measured": fill(rules.sparse_prune.output.measured, **w),
            "weights": fill(rules.sparse_prune.output.weights, **w)}

def evaluated_model(kind):
    """The inputs of a pruned model's evaluation of ``kind`` (ppl, tasks): its sources, and for an auto plan
    the same evaluation of each candidate the workflow evaluates anyway (a method of ``methods`` on an
    evaluated view, same model and budget), keyed candidate_<i>, whose rows it copies when the plan removes
    the same blocks (a chosen candidate that is not evaluated, a compared statistic's view, is evaluated as
    any plan)."""

    def inputs(wildcards):
        w = dict(wildcards.items())
        out = model_sources(**w)
        if w["method"] == AUTO:
            template = getattr(getattr(rules, "evaluate_pruned" if kind == "ppl" else "evaluate_tasks_pruned").output, kind)
            evaluated = set(lc.evaluated_views(config))
            candidates = [c for c in lc.auto_candidates(config, w["calib"])
                          if c["method"] in config["methods"] and c["view"] in evaluated]
            out.update({f"{REUSED_PREFIX}{i}": fill(template, **{**w, "calib": c["view"], "method": c["method"]})
                        for i, c in enumerate(candidates)})
        return out

    return inputs

def efficiency_entries(wildcards):
    """The pruned models the efficiency job of a model measures against its dense model (every depth method
    at every budget and every sparse model, of every calibration, and every recovered model, as its other
    evaluations: recovered_outputs), as (labels, sources)."""
    models = [(calib, method, budget, None) for calib in config["calibration"]
              for method, budget in lc.evaluated_models(config)]
    models += [(calib, m, b, r) for calib in lc.evaluated_views(config) for m, b, r in RECOVERED]
    out = []
    for calib, method, budget, recovery in models:
        w = {"model": wildcards.model, "calib": calib, "budget": budget}
        sources = model_sources(method, **w) if recovery is None else recovered_model({**w, "method": method,
                                                                                       "recovery": recovery})
        out.append(({"model": wildcards.model, "calib": calib, "method": recovered_name(method, recovery),
                     "budget": int(budget), "base_model": sources["model"], "plan": sources["plan"]}, sources))
    return out

def efficiency_inputs(wildcards):
    """The prepared model and what every pruned model of it is built from (<key>_<i> for entry i)."""
    files = {"model": fill(rules.prepare_model.output.model, model=wildcards.model)}
    for i, (_, sources) in enumerate(efficiency_entries(wildcards)):
        files.update({f"{key}{ENTRY_SEPARATOR}{i}": path for key, path in sources.items() if key != "model"})
    return files

def zeroshot_data(wildcards):
    """The task files read offline and the lm-eval task definitions shipped in lorp (each task's YAML and
    their utils.py), so that an edit of either reruns the task evaluations."""
    import lorp.evaluation.zeroshot as lz

    zs = lc.zeroshot_params(config)
    if zs["data_dir"] is None:
        return []
    definitions = [lz.TASK_DIR / f"{lz.offline_task_name(t)}.yaml" for t in zs["tasks"]] + [lz.TASK_DIR / "utils.py"]
    # relative to the working directory, so that a results directory moved with its workflow stays up to date
    return by_content([os.path.join(zs["data_dir"], lz.OFFLINE_FILES[t]) for t in zs["tasks"]]
                      + [os.path.relpath(p) for p in definitions])


# ---------------------------------------------------------------- input functions of rules/summary.smk
def dense_outputs(template):
    """An evaluation of the dense model (``rules.<rule>.output.<key>``) for every model."""
    return expand(template, model=MODELS)

def pruned_outputs(template, methods=METHODS, budgets=BUDGETS):
    """An evaluation of a plan for every model, evaluated view, method and budget."""
    return expand(template, model=MODELS, calib=lc.evaluated_views(config), method=methods, budget=budgets)

def sparse_outputs(template):
    """An evaluation for every sparse model: each method at its targets."""
    return [out for method, budget in lc.sparse_evaluations(config) for out in pruned_outputs(template, [method], [budget])]

def recovered_outputs(template):
    """``template`` (a recover output or a recovered model's evaluation) for every model, evaluated view and
    recovered model."""
    return [fill(template, model=model, calib=calib, method=m, budget=b, recovery=r)
            for model in MODELS for calib in lc.evaluated_views(config) for m, b, r in RECOVERED]

def all_pruned_outputs(template, recovered=None):
    """An evaluation for every depth method at every budget and every sparse model, and with ``recovered``
    (the recovered models' rule output of the same kind) every recovered model."""
    return pruned_outputs(template) + sparse_outputs(template) + (recovered_outputs(recovered) if recovered else [])


# ---------------------------------------------------------------- input functions of rules/recovery.smk
def recover_inputs(wildcards):
    """What a recovery's fit reads, as its registration declares (lorp.recovery.registry): the plan, and the
    plan's stored calibration activations, or the prepared model and the training corpus' local file."""
    w = dict(wildcards.items())
    out = {"plan": fill(rules.plan.output.plan, **w)}
    declared = get_recovery(w["recovery"]).inputs
    if "activations" in declared:
        out["activations"] = fill(rules.capture_activations.output.activations, model=w["model"],
                                  calib=lc.activation_source(config, w["calib"]))
    if "model" in declared:
        out["model"] = fill(rules.prepare_model.output.model, **w)
        data = recovery_data(wildcards)
        if data:
            out["data"] = data[0]
    return out


def recovery_data(wildcards):
    """The local file of the recovery's training corpus, by content (a list: empty without one)."""
    data = config["recovery"]["methods"][wildcards.recovery].get("data")
    if not data or "model" not in get_recovery(wildcards.recovery).inputs:
        return []
    return by_content([os.path.expanduser(data["source"])])

def recover_threads(wildcards):
    """A fit that runs the model (LoRA) gets every core; the closed-form patch one."""
    return all_cores(wildcards) if "model" in get_recovery(wildcards.recovery).inputs else 1

def recovered_model(wildcards):
    """What a recovered model is built from in memory: the pruned model's sources and the recover job's output
    (``wildcards``: a job's, or a dict of model, calib, method, budget and recovery)."""
    w = dict(wildcards.items())
    return {**model_sources(**w), "recovery": fill(rules.recover.output.recovery, **w)}


# ---------------------------------------------------------------- input functions of rules/sensitivity.smk
def view_inputs(views, files):
    """The files of each view (``model`` and ``calib`` wildcards), view by view: each of ``files`` (rls,
    cosine, summary, per_sequence) and its plans (the methods that read the similarity x budgets, in config
    order)."""
    templates = {"rls": rules.structure.output.rls, "cosine": rules.similarity.output.cosine,
                 "summary": rules.similarity.output.summary, "per_sequence": rules.similarity.output.per_sequence}
    out = {name: [] for name in (*files, "plans")}
    for w in views:
        for name in files:
            out[name].append(fill(templates[name], **w))
        out["plans"] += [fill(rules.plan.output.plan, **w, method=m, budget=b)
                         for m in lc.similarity_methods(config) for b in BUDGETS]
    return out

def sensitivity_inputs(wildcards):
    """What the sensitivity tables of a model read, view by view (lorp.workflow.config.sensitivity_views):
    the structure, the similarity summary, the per-sequence sums and the plans."""
    views = [{"model": wildcards.model, "calib": calib} for calib in lc.sensitivity_views(config)]
    return view_inputs(views, ("rls", "summary", "per_sequence"))

def sensitivity_figure(name):
    return in_report(f"sensitivity_{name}", category="{model}", subcategory="sensitivity", model="{model}",
                     figure=name)(f"results/{{model}}/sensitivity/{name}.png")


# ---------------------------------------------------------------- input functions of rules/sparsity.smk
def sparse_scores(wildcards):
    """What a metric's scores need: the prepared model, and for a metric that uses them the per-input factors
    it declares (lorp.sparse.registry.Metric.score_norms: the dense input norms, or SparseGPT's own saliency)."""
    model = fill(rules.prepare_model.output.model, model=wildcards.model)
    source = lc.score_norms(config, wildcards.metric)
    if source is None:
        return {"model": model}
    return {"model": model, "norms": fill(getattr(rules, source).output.norms, model=wildcards.model, calib=wildcards.calib)}

def sparse_plan_inputs(wildcards):
    """What an allocation's plan reads, as its registration declares (lorp.sparse.allocation_plans): the layers' shapes
    (the prepared model), the dense outlier ratios of its metric, or the blocks' scores (sparse_scores); an
    N:M pattern reads the shapes."""
    declared = ("shapes",) if parse_nm(wildcards.allocation) else get_allocation(wildcards.allocation).inputs
    out = {}
    for name in declared:
        if name == "shapes":
            out["model"] = fill(rules.prepare_model.output.model, model=wildcards.model)
        elif name == "outliers":
            out["outliers"] = fill(rules.outliers.output.outliers, **dict(wildcards.items()))
        else:
            out.update(sparse_scores(wildcards))
    return out

def sparse_prune_inputs(wildcards):
    """The model and plan, and as its pruning params say (lorp.workflow.config.sparse_prune_params) the dense
    norms, or the calibration tokens (Wanda's sequential norms, SparseGPT's sequential Hessians)."""
    w = dict(wildcards.items())
    out = {"model": fill(rules.prepare_model.output.model, **w), "plan": fill(rules.sparse_plan.output.plan, **w)}
    pruning = lc.sparse_prune_params(config, wildcards.metric)
    if pruning["norms"] == "dense":
        out["norms"] = fill(rules.input_norms.output.norms, **w)
    elif pruning["norms"] == "sequential" or "hessians" in pruning:
        out["tokens"] = fill(rules.calibration_tokens.output.tokens, **w)
    return out

def sparse_files(template, per_row=False, **fixed):
    """``template`` (a sparse plan or measurement) filled for every sparse plan of the config, for every model
    and calibration not fixed by ``fixed``; with ``per_row`` only the per-row allocations' plans (those
    lorp.workflow.config.redundancy_plans lists), of ``fixed["metric"]`` where given."""
    out = []
    for model in [fixed["model"]] if "model" in fixed else MODELS:
        for calib in [fixed["calib"]] if "calib" in fixed else CALIBS:
            for metric, allocation, target in lc.sparse_plans(config):
                if "metric" in fixed and metric != fixed["metric"]:
                    continue
                if per_row and allocation not in SPARSE["allocations"]:
                    continue
                out.append(fill(template, model=model, calib=calib, metric=metric, allocation=allocation,
                                target=target))
    return out

def per_row_plans(wildcards):
    """The plans of a model and calibration (of one metric, where the wildcards name it) whose redundancy
    after pruning is assessed: the per-row allocations, not the N:M patterns."""
    return sparse_files(rules.sparse_plan.output.plan, per_row=True, **dict(wildcards.items()))

REDUNDANCY_METRICS = SPARSE["metrics"] if SPARSE_TARGETS else []  # redundancy.json needs per-row plans


# ---------------------------------------------------------------- the default target (Snakefile)
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
    out += [fill(rules.recovered_checkpoint.output.checkpoint, model=model, calib=calib, method=m, budget=b, recovery=r)
            for model in MODELS for calib in CALIBS for m, b, r in RECOVERED if f"{m}-{b}+{r}" in exported]
    if RECOVERED:
        out.append(rules.summary_recovery.output.md)
        out += expand(rules.figure_recovery.output.png, model=MODELS, calib=views)
    if config["zeroshot"]["tasks"]:
        out.append(rules.summary_tasks.output.md)
    if config["efficiency"]["enabled"]:
        out.append(rules.summary_efficiency.output.md)
    if lc.compared_statistics(config):
        out.append(rules.statistics.output.png)
    if AUTO in METHODS:
        out.append(rules.summary_auto.output.md)
    if config["evaluation"]["seeds"]:
        out.append(rules.summary_seeds.output.md)
    if config["ablation"]["lorp_k"]:
        out.append(rules.k_ablation.output.png)
    if lc.sensitivity_enabled(config):
        out += expand(rules.sensitivity.output.rls_png, model=MODELS)
    if lc.sparse_plans(config):
        out.append(rules.summary_sparsity.output.md)
        out += expand(rules.figure_vs_sparsity.output.png, kind=["ppl"] + (["tasks"] if config["zeroshot"]["tasks"] else []))
        if lc.sweep_enabled(config):
            out += expand(rules.mrp_sweep.output.json, model=MODELS, calib=CALIBS, metric=SPARSE["metrics"])
        if SPARSE_TARGETS:
            out += expand(rules.figure_sparsity.output.png, model=MODELS, calib=CALIBS)
    return out


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
