"""Metrics, allocations and similarity statistics are each declared once, in a registry; the config schema,
the rules, the plan stage and the figures follow from it (issue 23)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny import tiny_config  # noqa: E402


def test_the_schema_enums_are_the_registered_names():
    from lorp.depth.statistics import STATISTICS
    from lorp.sparse.names import ALLOCATIONS, METRICS
    from lorp.workflow.config import load_schema

    schema = load_schema()
    sparsity = schema["properties"]["sparsity"]["properties"]
    assert sparsity["metrics"]["items"]["enum"] == list(METRICS) == ["wanda", "magnitude", "sparsegpt"]
    assert sparsity["allocations"]["items"]["enum"] == list(ALLOCATIONS) == ["uniform", "owl", "mrp"]
    similarity = schema["properties"]["similarity"]["properties"]
    assert similarity["statistic"]["enum"] == similarity["compare"]["items"]["enum"] == list(STATISTICS)
    assert "x-registry" not in json.dumps(schema)


def test_a_registered_statistic_declares_its_setting_and_passes():
    from lorp.depth.similarity import passes
    from lorp.depth.statistics import get_statistic
    from lorp.workflow.config import similarity_params, validate_schema

    assert [passes(s) for s in ("cosine", "centred", "no-massive", "cka")] == [1, 2, 2, 2]
    cfg = validate_schema(tiny_config(similarity={"statistic": "cka"}))
    assert similarity_params(cfg, "docs") == {"statistic": "cka", "cka_batch_tokens": cfg["similarity"]["cka_batch_tokens"]}
    assert get_statistic("no-massive").parameter == "massive_multiple"
    with pytest.raises(ValueError, match="unknown similarity statistic 'cosin'; choose one of cosine, centred"):
        get_statistic("cosin")


def test_each_allocation_declares_its_inputs_and_settings():
    from lorp.sparse.allocation_plans import get_allocation
    from lorp.sparse.metrics import get_metric
    from lorp.workflow.config import sparse_plan_params, validate_schema

    cfg = validate_schema(tiny_config(sparsity={"targets": [50]}))
    assert get_allocation("owl").inputs == ("outliers",) and get_allocation("mrp").inputs == ("scores",)
    assert sparse_plan_params(cfg, "uniform") == {} and sparse_plan_params(cfg, "2of4") == {}
    assert sparse_plan_params(cfg, "owl") == {"owl_lambda": cfg["sparsity"]["owl_lambda"]}
    assert set(sparse_plan_params(cfg, "mrp")) == {"outlier_m", "count_zeros", "mrp"}
    assert get_metric("wanda").uses_norms and not get_metric("magnitude").uses_norms
    with pytest.raises(ValueError, match="unknown allocation 'mpr'; choose one of uniform, owl, mrp"):
        get_allocation("mpr")
