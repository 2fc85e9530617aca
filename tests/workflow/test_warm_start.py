"""Jobs started warm in a local run (lorp.workflow.warm): the completed tiny run's evaluations say so, and
an evaluation started cold writes the same file (rerun in a private copy)."""

import os

import pytest

from tiny import snakemake, tiny_config

pytestmark = pytest.mark.slow


def test_jobs_start_warm_and_give_the_numbers_of_a_cold_start(completed, own_copy):
    """A local run forks its model-loading jobs from a server that imported PyTorch (lorp.workflow.warm):
    the evaluations' logs say so, and an evaluation started cold (LORP_WARM_START=0) writes the same file."""
    evaluations = [p for p in (completed / "results/logs/smol/eval").rglob("*.log")
                   if "[lorp] rule evaluate" in p.read_text()]
    assert evaluations and all("(warm start" in p.read_text() for p in evaluations), \
        [p.name for p in evaluations if "(warm start" not in p.read_text()]
    logs = own_copy / "results/logs/smol/eval"
    target = "results/smol/eval/dense/ppl.csv"
    runs = {}
    for switch in ("1", "0"):
        out = snakemake(own_copy, tiny_config(), target, "--forcerun", "evaluate_dense",
                        env={**os.environ, "LORP_WARM_START": switch})
        assert out.returncode == 0, out.stderr[-3000:]
        assert ("(warm start" in (logs / "dense.log").read_text()) == (switch == "1")
        runs[switch] = (own_copy / target).read_text()
    assert runs["0"] == runs["1"]
