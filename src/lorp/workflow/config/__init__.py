"""Workflow configuration, by job: the schema (:mod:`.schema`: loading, validation with defaults, errors),
the views of the calibrations (:mod:`.views`, computed once per config), the rules' config slices
(:mod:`.slices`) and the semantic checks before any job runs (:mod:`.checks`).

Each stage's parameters are a *slice* of the config holding exactly what its output depends on
(docs/reruns.md); Snakemake reruns a job when its slice changes. The rules use this package as ``lc``.
"""

from __future__ import annotations

from .schema import (ConfigError, REMOVED_KEYS, SCHEMA_PATH, did_you_mean, load_schema, registries,  # noqa: F401
                     validate_schema)
from .views import (ABLATION_PREFIX, VIEW_SECTIONS, VIEW_SEPARATOR, View, ablation_budgets, ablation_k,  # noqa: F401
                    ablation_methods, activation_source, auto_candidates, base_method, calibration_spec,
                    evaluated_views, seed_groups, selection_methods, sensitivity_reference, sensitivity_views,
                    token_source, view, views)
from .slices import (SWEPT_ALLOCATION, activation_params, auto_plans, compared_statistics, compute_params,  # noqa: F401
                     efficiency_params, evaluated_models, evaluated_names, evaluation_datasets,
                     exported_checkpoints, figure_budget, figure_labels, fixed_k_structure_params,
                     held_out_params, method_params, model_params, outlier_params, redundancy_plans,
                     sensitivity_enabled, sensitivity_params, similarity_params, sparse_evaluations,
                     sparse_methods, sparse_plan_params, sparse_plans, sparse_prune_params, sparse_targets,
                     statistics_views, structure_params, sweep_enabled, sweep_params, zeroshot_params)
from .checks import (ModelShape, auto_errors, check_config, config_problems, export_errors, sensitivity_errors,  # noqa: F401
                     sequence_lengths, sparsity_errors)
