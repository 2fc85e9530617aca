"""Bad configs fail before any job runs, with messages that name the key and the allowed values."""

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lorp.workflow.config import (ConfigError, ModelShape, activation_params, check_config, evaluation_datasets,
                                  structure_params)

ROOT = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((ROOT / "config.yaml").read_text())


def check(cfg, n_layers=30, context=8192):
    """The validated config (schema defaults filled in), after every check against a model of that shape."""
    cfg = copy.deepcopy(cfg)
    check_config(cfg, lambda model: ModelShape(n_layers, context), base_dir=ROOT)
    return cfg


def modified(**changes):
    cfg = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = cfg
        *parents, last = dotted.split("__")
        for p in parents:
            node = node[p]
        node[last] = value
    return cfg


def test_default_config_is_valid_and_gets_defaults():
    cfg = check(BASE)
    assert cfg["methods"]["lorp"]["rls_thresholds"] == [1.0, 0.7]
    assert structure_params(cfg) == {"k": None, "rls_thresholds": [1.0, 0.7], "random_state": 0}
    ds = evaluation_datasets(cfg, "smollm2-135m")["python-docs"]
    assert ds["seqlen"] == 256 and ds["max_windows"] == 16 and ds["join"] == "\n\n"


@pytest.mark.parametrize("cfg,match", [
    (modified(methods={"lorp": {}, "random": {}}),
     r"methods: unknown method 'random'; allowed: lorp, shortgpt, streamline, angular, last"),
    (modified(methods={"lorpp": {}}), r"methods: unknown method 'lorpp' \(did you mean 'lorp'\?\); allowed: lorp,"),
    (modified(methods__shortgpt={"protect_frist": False}),
     r"methods\.shortgpt: unknown key 'protect_frist' \(did you mean 'protect_first'\?\); allowed: protect_first"),
    (modified(budget=[2]), r"\(top level\): unknown key 'budget' \(did you mean 'budgets'\?\); allowed: models,"),
    (modified(budgets=[0, 2]), r"budgets\.0: 0 is less than the minimum of 1"),
    (modified(budgets=[29]), r"budgets: \[29\] too large for method 'lorp' on model 'smollm2-135m' \(30 layers\): allowed 1..28"),
    (modified(methods__lorp={"k": 1}), r"methods\.lorp\.k: 1 is less than the minimum of 2"),
    (modified(methods__lorp={"k": 31}), r"methods\.lorp\.k: 31 clusters is more than the 30 layers"),
    (modified(methods__lorp={"rls_thresholds": [0.7, 1.0]}), r"rls_thresholds: must be strictly descending"),
    (modified(evaluation__datasets={"wiki": {"source": "no/such/file.txt"}}),
     r"evaluation\.datasets\.wiki\.source: file .*no/such/file.txt does not exist \(or use one of python-docs, c4"),
    (modified(evaluation__datasets={"wiki": {"sorce": "wikitext2"}}), r"evaluation\.datasets\.wiki: 'source' is a required"),
    (modified(evaluation__datasets={"wiki": {"source": "wikitext2", "max_window": 4}}),
     r"evaluation\.datasets\.wiki: unknown key 'max_window' \(did you mean 'max_windows'\?\); allowed: source, "),
    (modified(calibration__python_docs={"source": "python-docs", "n_sample": 4}),
     r"calibration\.python_docs: unknown key 'n_sample' \(did you mean 'n_samples'\?\)"),
    (modified(calibration__python_docs={"source": "python-docs", "n_samples": 0}), r"n_samples: 0 is less than"),
    (modified(activations__dtype="int8"), r"activations\.dtype: 'int8' is not one of \['float16', 'float32'\]$"),
    (modified(activations__dtype="float61"), r"'float61' is not one of \['float16', 'float32'\] \(did you mean 'float16'\?\)"),
    (modified(compute__device="tpu"), r"compute\.device: 'tpu' does not match"),
    (modified(models={"m": {"source": "embedded", "activations_dtype": "bfloat16"}}),
     r"models\.m\.activations_dtype: 'bfloat16' is not one of \['float16', 'float32', None\]"),
    (modified(sparsity={"targets": [0, 50]}), r"sparsity\.targets\.0: 0 is less than or equal to the minimum of 0"),
    (modified(sparsity={"targets": [100]}), r"sparsity\.targets\.0: 100 is greater than or equal to the maximum of 100"),
    (modified(sparsity={"target": [50]}), r"sparsity: unknown key 'target' \(did you mean 'targets'\?\)"),
    (modified(sparsity={"targets": [50], "metrics": ["wand"]}),
     r"sparsity\.metrics\.0: 'wand' is not one of \['wanda', 'magnitude', 'sparsegpt'\] \(did you mean 'wanda'\?\)"),
        (modified(sparsity={"targets": [50], "metrics": ["sparsegpt"], "sparsegpt": {"blocksize": 0}}),
         r"sparsity\.sparsegpt\.blocksize: 0 is less than the minimum of 1"),
        (modified(sparsity={"targets": [50], "metrics": ["sparsegpt"], "sparsegpt": {"damping": 1}}),
         r"sparsity\.sparsegpt\.damping: 1 is greater than or equal to the maximum of 1"),
        (modified(sparsity={"targets": [50], "metrics": ["sparsegpt"], "sparsegpt": {"damping": 0}}),
         r"sparsity\.sparsegpt\.damping: 0 is less than or equal to the minimum of 0"),
        (modified(sparsity={"metrics": ["sparsegpt"], "nm": ["2:4"], "sparsegpt": {"blocksize": 6}}),
         r"sparsity\.sparsegpt\.blocksize: 6 is not a multiple of M=4, .*; set it to a multiple of 4"),
        (modified(sparsity={"targets": [50], "metrics": ["sparsegpt"], "sparsegpt": {"hessian_dtype": "bf16"}}),
         r"sparsity\.sparsegpt\.hessian_dtype: 'bf16' is not one of \['float32', 'float64'\]"),
    (modified(sparsity={"targets": [50], "allocations": ["mpr"]}),
     r"sparsity\.allocations\.0: 'mpr' is not one of \['uniform', 'owl', 'mrp'\] \(did you mean 'mrp'\?\)"),
    (modified(sparsity={"targets": [50], "outlier_m": 1}), r"sparsity\.outlier_m: 1 is less than or equal to the minimum of 1"),
    (modified(sparsity={"targets": [50], "mrp": {"step": 3}}),
     r"sparsity\.mrp\.step: 3 does not divide the range MRP covers, sparsity\.mrp\.start_below = 20 points"),
    (modified(sparsity={"targets": [50], "sweep": {"step": [1, 7]}}), r"sparsity\.sweep\.step: 7 does not divide"),
    (modified(sparsity={"targets": [10, 50]}), r"sparsity\.mrp\.start_below: 20 points below targets \[10\] is below 0"),
    (modified(sparsity={"targets": [50], "owl_lambda": 0.3}), r"sparsity\.owl_lambda: 0\.3 makes OWL's sparsities"),
    (modified(sparsity={"targets": [96]}), r"sparsity\.mrp\.upper: 95% is not above targets \[96\]"),
    (modified(sparsity={"nm": ["1:3"]}), r"sparsity\.nm: '1:3' prunes 66\.6667%, not a whole percent"),
    (modified(sparsity={"nm": ["4:2"]}), r"sparsity\.nm: '4:2' must keep N of M inputs with 0 < N < M"),
    (modified(sparsity={"nm": ["2/4"]}), r"sparsity\.nm\.0: '2/4' does not match"),
    (modified(checkpoints={"temporary": True}),
     r"checkpoints\.temporary: no longer a setting: evaluations build each pruned model in memory .* remove the key"),
    (modified(checkpoints={"export": ["lorp-9"]}),
     r"checkpoints\.export: 'lorp-9' is not a model this config evaluates .* \(did you mean 'lorp-8'\?\)"),
    (modified(checkpoints={"export": ["wanda-owl-60"]}), r"checkpoints\.export: 'wanda-owl-60' is not a model"),
    (modified(checkpoints={"export": "some"}), r"checkpoints\.export: 'some' is not valid under any of the given schemas"),
])
def test_invalid_configs(cfg, match):
    with pytest.raises(ConfigError, match=match):
        check(cfg)


def test_activation_dtype_per_model_overrides_the_global_one():
    cfg = check(modified(models={"smol": {"source": "embedded"},
                                 "gemma": {"source": "embedded", "activations_dtype": "float32"}}))
    calib = next(iter(cfg["calibration"]))
    assert activation_params(cfg, "smol", calib)["dtype"] == "float16"
    assert activation_params(cfg, "gemma", calib)["dtype"] == "float32"
    cfg["activations"]["dtype"] = "float32"
    assert activation_params(cfg, "smol", calib)["dtype"] == "float32"


def test_bos_per_window_per_model_overrides_the_evaluation_default():
    cfg = check(modified(models={"smol": {"source": "embedded"},
                                 "gemma": {"source": "embedded", "bos_per_window": True}}))
    # off (the default) adds nothing to the slice, so results from before the option stay valid
    assert "bos_per_window" not in evaluation_datasets(cfg, "smol")["python-docs"]
    assert evaluation_datasets(cfg, "gemma")["python-docs"]["bos_per_window"]
    cfg["evaluation"]["bos_per_window"] = True
    assert evaluation_datasets(cfg, "smol")["python-docs"]["bos_per_window"]
    cfg["models"]["smol"]["bos_per_window"] = False
    assert "bos_per_window" not in evaluation_datasets(cfg, "smol")["python-docs"]


def test_shipped_configs_are_valid():
    for path in [ROOT / "config.yaml", *sorted((ROOT / "config").glob("*.yaml"))]:
        cfg = yaml.safe_load(path.read_text())
        # each model's own depth and context where the config gives them (OPT's 2048 positions in paper-mrp.yaml)
        check_config(cfg, lambda m: ModelShape(cfg["models"][m].get("num_hidden_layers") or 30,
                                               cfg["models"][m].get("max_position_embeddings") or 131072),
                     base_dir=ROOT)


def test_a_bad_value_in_an_entry_is_reported_alone():
    """unevaluatedProperties would also call every key of an entry with a bad value unexpected."""
    with pytest.raises(ConfigError) as err:
        check(modified(evaluation__datasets={"wiki": {"source": "wikitext2", "max_documents": 0}}))
    assert "max_documents: 0 is less than the minimum of 1" in str(err.value)
    assert "Unevaluated" not in str(err.value)


def test_a_device_map_enters_the_params_only_when_set():
    """Configs without compute.device_map keep the params they had before the key existed (nothing reruns)."""
    from lorp.workflow.config import compute_params

    assert compute_params(check(BASE)) == {"device": "auto", "dtype": "auto"}
    assert compute_params(check(modified(compute={"device_map": "auto"}))) == {
        "device": "auto", "dtype": "auto", "device_map": "auto"}
    with pytest.raises(ConfigError, match=r"compute\.device_map: 'everywhere' is not one of"):
        check(modified(compute={"device_map": "everywhere"}))


def test_budget_limit_depends_on_method():
    cfg = modified(methods={"angular": {}}, budgets=[30], checkpoints={"export": ["angular-30"]})
    check(cfg)  # angular may remove every block
    with pytest.raises(ConfigError, match="allowed 1..29"):
        check(modified(methods={"streamline": {}}, budgets=[30], checkpoints={"export": "all"}))


def test_snakemake_refuses_bad_config_before_any_job(tmp_path, no_slurm_controller):
    """Every problem, one per line, and no traceback; the embedded model's depth (30) and context (8192)
    come from its GGUF metadata."""
    bad = modified(budgets=[40], calibration={"python-docs": {"source": "python-docs", "seqlen": 8300}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--directory",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "\n  budgets: [40] too large for method 'lorp' on model 'smollm2-135m' (30 layers)" in text
    assert ("\n  calibration.python-docs.seqlen: 8300 positions is more than the 8192 that model 'smollm2-135m' "
            "was trained for (max_position_embeddings); use at most 8192") in text
    assert "Traceback" not in text and 'File "' not in text


@pytest.mark.parametrize("change,key", [
    ({"calibration__python-docs": {"source": "python-docs", "seqlen": 600}}, "calibration.python-docs.seqlen: 600"),
    ({"evaluation__seqlen": 513}, "evaluation.seqlen: 513"),
    ({"evaluation__datasets": {"d": {"source": "python-docs", "seqlen": 1000}}}, "evaluation.datasets.d.seqlen: 1000"),
    ({"efficiency__seqlen": 510}, "efficiency.seqlen + efficiency.decode_tokens: 518"),
])
def test_sequence_lengths_beyond_the_model_context(change, key):
    with pytest.raises(ConfigError, match=re.escape(key) + " positions is more than the 512 that model"):
        check(modified(**change), context=512)
    check(modified(**change), context=4096)


def test_a_model_whose_shape_is_unknown_offline_is_a_warning_naming_the_fix():
    cfg = modified(models={"llama": {"source": "meta-llama/Llama-3.1-8B"}})
    warnings = check_config(cfg, lambda model: None, base_dir=ROOT)
    assert len(warnings) == 1 and warnings[0].startswith("models.llama: the depth and context of")
    assert "models.llama.num_hidden_layers" in warnings[0] and "HF_HOME" in warnings[0]


def test_a_source_that_is_neither_a_path_nor_a_hub_id_is_rejected():
    from lorp.models import resolve_source

    with pytest.raises(FileNotFoundError, match="'my-modles' is neither an existing path .* nor a Hugging Face hub id"):
        resolve_source("my-modles")
    with pytest.raises(FileNotFoundError, match="model path .*does/not/exist does not exist"):
        resolve_source("./does/not/exist")
    assert resolve_source("meta-llama/Llama-3.1-8B").kind == "hub"
    errors = []
    with pytest.raises(ConfigError, match=r"models\.m\.source: 'my-modles' is neither"):
        check_config(modified(models={"m": {"source": "my-modles"}}),
                     lambda model: errors.append(model) or resolve_source("my-modles"), base_dir=ROOT)


MINIMAL = {"models": {"m": {"source": "embedded"}}, "calibration": {"c": {"source": "python-docs"}},
           "methods": {"lorp": {}, "shortgpt": {}, "auto": {}}, "budgets": [2],
           "evaluation": {"datasets": {"d": {"source": "python-docs"}}}, "recovery": {"methods": {"patch": {}}}}
ARGUMENTS = {"model": "m", "calib": "c", "name": "c", "method": "shortgpt", "k": "3", "metric": "wanda",
             "allocation": "mrp", "recovery": "patch"}
"""A value for every argument a config function of the rules takes besides the config."""
# functions whose result holds no key the schema fills in (names and lists the config states itself)
NOTHING_DEFAULTED = {"selection_methods", "similarity_methods", "model_methods", "figure_labels"}


def test_the_rules_config_slices_read_the_validated_config_and_have_no_defaults_of_their_own():
    """The schema is the one source of defaults: on a config the schema has not filled in, every config
    function the rules call (``lc.<name>(config, ...)`` in rules/*.smk and the Snakefile) fails or gives
    something else than on the validated config (it substitutes nothing)."""
    import inspect

    import lorp.workflow.config as lc
    from lorp.workflow.config import load_schema, validate_schema

    text = "".join(p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))])
    called = sorted(set(re.findall(r"\blc\.(\w+)\(config", text)) - {"check_config", "validate_schema"})  # the check
    assert {"method_params", "evaluation_datasets", "sparse_plan_params", "compute_params"} <= set(called)
    validated = validate_schema(copy.deepcopy(MINIMAL))
    schema = load_schema()
    assert validated["evaluation"]["seqlen"] == schema["properties"]["evaluation"]["properties"]["seqlen"]["default"]
    assert validated["methods"]["shortgpt"] == {"protect_first": True}  # the registry's default, via the schema
    filled_in = keys_filled_in(MINIMAL, validated)
    assert {"seqlen", "dtype", "protect_first"} <= filled_in
    failed = set()
    for name in called:
        function = getattr(lc, name)
        args = [ARGUMENTS[a] for a in list(inspect.signature(function).parameters)[1:]]
        expected = function(validated, *args)
        if name in NOTHING_DEFAULTED:  # these must work on the raw config, and give the same
            assert function(copy.deepcopy(MINIMAL), *args) == expected, name
            continue
        try:
            got = function(copy.deepcopy(MINIMAL), *args)
        except KeyError as missing:  # it reads a key that only the schema fills in (not any other key)
            assert missing.args[0] in filled_in, f"{name}: KeyError {missing} is no key the schema fills in"
            failed.add(name)
            continue
        except TypeError:  # it computes with a value only the schema fills in
            failed.add(name)
            continue
        assert got != expected, f"{name}: gives on the raw config what the schema's defaults give"
    assert failed and failed != set(called) - NOTHING_DEFAULTED  # both outcomes are exercised


def keys_filled_in(raw, validated) -> set:
    """The keys the schema adds to ``raw`` (at any depth) in ``validated``."""
    if not isinstance(validated, dict):
        return set()
    raw = raw if isinstance(raw, dict) else {}
    added = set(validated) - set(raw)
    for key, value in validated.items():
        added |= keys_filled_in(raw.get(key), value)
    return added


CONFIG_NAMES = {"config", "c", "cfg", "params", "spec", "compute", "settings", "entry", "ev", "act", "eff", "zs",
                "lorp", "w", "wildcards"}


def test_stage_code_has_no_fallback_defaults():
    """No ``.get(key, default)`` on the config or its slices in the config and stage modules."""
    import ast

    workflow = ROOT / "src" / "lorp" / "workflow"
    stages = sorted((workflow / "stages").glob("*.py"))
    assert {p.stem for p in stages} >= {"model", "calibration", "depth", "sparse", "evaluation", "reports"}
    for path in [*sorted((workflow / "config").glob("*.py")), *stages]:
        name = path.relative_to(workflow)
        tree = ast.parse(path.read_text())
        calls = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and len(node.args) > 1
                 and isinstance(node.func.value, ast.Name) and node.func.value.id in CONFIG_NAMES]
        assert calls == [], f"{name}: .get with a default on lines {calls}"


def test_an_unreachable_hub_model_stops_prepare_model_with_one_message_naming_the_key(tmp_path):
    """No hub and nothing cached: prepare_model names models.<name>.source, the cause and the fix."""
    code = ("from lorp.workflow.stages.model import prepare_model\n"
            f"prepare_model('someone/some-model', {str(tmp_path / 'model')!r}, 'bfloat16', key='models.llama.source')")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("lorp.models.HubUnavailableError: models.llama.source: the Hugging Face hub could not be "
                           "reached for 'someone/some-model' and the model is not in the local cache;"), last
    assert "HF_HOME" in last and not (tmp_path / "model").exists()


def test_a_misspelt_key_beside_a_bad_value_is_reported_too():
    with pytest.raises(ConfigError) as err:
        check(modified(calibration={"python-docs": {"source": "python-docs", "n_samples": 0, "seqln": 4}}))
    assert "n_samples: 0 is less than the minimum of 1" in str(err.value)
    assert "calibration.python-docs: unknown key 'seqln' (did you mean 'seqlen'?)" in str(err.value)


def test_the_figure_budget_must_be_a_configured_budget():
    with pytest.raises(ConfigError, match=r"figures\.budget: 3 is not one of budgets \[2, 4, 6, 8\]"):
        check(modified(figures={"budget": 3}))
    check(modified(figures={"budget": 4}))


def test_an_unknown_context_length_is_a_warning():
    cfg = modified(models={"llama": {"source": "meta-llama/Llama-3.1-8B", "num_hidden_layers": 32}})
    warnings = check_config(cfg, lambda model: ModelShape(32, None), base_dir=ROOT)
    assert warnings and "models.llama.max_position_embeddings" in warnings[0]


# ---------------------------------------------------- calibration views (issue 13)
def test_views_share_what_they_do_not_change():
    from lorp.workflow import config as lc

    cfg = check(modified(similarity={"compare": ["cka", "cosine"], "massive_multiple": 50},
                         sensitivity={"variations": {"n8": {"n_samples": 8}, "sub": {"tokens_per_sequence": 16},
                                                     "nm": {"statistic": "no-massive"}},
                                      "bootstrap": {"resamples": 10}}))
    views = lc.views(cfg)
    assert list(views) == ["python-docs", "python-docs~cka", "python-docs~n8", "python-docs~sub", "python-docs~nm"]
    assert [v.evaluated for v in views.values()] == [True, False, False, False, False]
    assert lc.evaluated_views(cfg) == ["python-docs"]
    assert [lc.token_source(cfg, v) for v in views] == ["python-docs", "python-docs", "python-docs~n8",
                                                         "python-docs", "python-docs"]
    assert [lc.activation_source(cfg, v) for v in views] == ["python-docs", "python-docs", "python-docs~n8",
                                                              "python-docs~sub", "python-docs"]
    assert lc.calibration_spec(cfg, "python-docs~n8")["n_samples"] == 8
    assert lc.activation_params(cfg, "smollm2-135m", "python-docs~sub")["tokens_per_sequence"] == 16
    assert lc.similarity_params(cfg, "python-docs") == {"statistic": "cosine"}
    assert lc.similarity_params(cfg, "python-docs~nm") == {"statistic": "no-massive", "massive_multiple": 50}
    assert lc.similarity_params(cfg, "python-docs~cka") == {"statistic": "cka", "cka_batch_tokens": 1024}
    assert lc.sensitivity_views(cfg) == ["python-docs", "python-docs~n8", "python-docs~sub", "python-docs~nm"]
    with pytest.raises(ConfigError, match="no calibration view 'python-docs~x'"):
        lc.view(cfg, "python-docs~x")
    # the default config has no views beyond its calibrations, and its similarity params are the paper's
    base = check(BASE)
    assert list(lc.views(base)) == list(base["calibration"]) and not lc.sensitivity_enabled(base)


@pytest.mark.parametrize("change,match", [
    ({"sensitivity": {"calibration": "python-doc"}},
     r"sensitivity\.calibration: 'python-doc' is not a calibration entry \(did you mean 'python-docs'\?\)"),
    ({"sensitivity": {"variations": {"cka": {"statistic": "cka"}}}},
     r"the variation name 'cka' is a similarity statistic's"),
    ({"sensitivity": {"variations": {"one": {"n_samples": 1}}, "bootstrap": {"resamples": 5}}},
     r"view 'python-docs~one' has 1 calibration sequence"),
    ({"sensitivity": {"variations": {"wiki": {"source": "no/such.txt"}}}},
     r"sensitivity\.variations\.wiki\.source: file .*no/such.txt does not exist"),
    ({"sensitivity": {"variations": {"long": {"seqlen": 9000}}}},
     r"sensitivity\.variations\.long\.seqlen: 9000 positions is more than the 8192"),
    ({"sensitivity": {"variations": {"empty": {}}}}, r"sensitivity\.variations\.empty: \{\} should be non-empty"),
    ({"similarity": {"statistic": "pearson"}}, r"similarity\.statistic: 'pearson' is not one of"),
    ({"similarity": {"massive_multiple": 1}}, r"similarity\.massive_multiple: 1 is less than or equal to"),
])
def test_bad_statistics_and_sensitivity_settings(change, match):
    with pytest.raises(ConfigError, match=match):
        check({**copy.deepcopy(BASE), **change})


def test_a_model_named_after_a_results_folder_of_the_workflow_is_refused():
    for name in ("sources", "logs", "summary", "figures"):
        with pytest.raises(ConfigError, match=rf"models.{name}: the name is taken by the folder results/{name}/"):
            check({**BASE, "models": {name: {"source": "embedded"}}})


def test_a_misspelt_sensitivity_reference_is_named_not_a_traceback():
    cfg = {**BASE, "sensitivity": {"calibration": "pyhton-docs", "variations": {"short": {"seqlen": 32}}}}
    with pytest.raises(ConfigError, match=r"sensitivity.calibration: 'pyhton-docs' is not a calibration entry "
                                          r"\(did you mean 'python-docs'\?\)"):
        check(cfg)
