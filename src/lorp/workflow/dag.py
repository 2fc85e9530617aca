"""The jobs of the workflow as Snakemake itself derives them, for the audit.

The rules (``rules/*.smk``) are the only declaration of what each stage writes and which config it
depends on. :func:`workflow_jobs` asks Snakemake for the DAG the default target implies (every job, as
``--forceall`` would run it) and returns each job's rule, wildcards, outputs, inputs and params, so the audit
checks exactly the DAG a run builds, with no second list of jobs to keep in step.

Snakemake's public API stops at running a DAG; listing its jobs uses ``Workflow.dag`` after the same two
preparation calls a run makes (``_prepare_dag``, ``_build_dag``), pinned with Snakemake in ``pyproject.toml``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .jobs import PROVENANCE_KEY

SNAKEFILE = Path(__file__).resolve().parents[3] / "Snakefile"
"""The workflow of this checkout."""


@dataclass(frozen=True)
class Job:
    """One job of the workflow: its rule, wildcards, outputs (the provenance record apart), inputs, params
    (the config slice and ``code``) and the rule's script (absolute; None for a rule without one)."""

    rule: str
    wildcards: dict[str, str]
    outputs: dict[str, str]
    provenance: str
    params: dict[str, Any]
    inputs: dict[str, Any]
    script: str | None = None


def _named(namedlist: Any) -> dict[str, Any]:
    """A Snakemake named list as a dict of its named entries (lists of paths stay lists)."""
    return {name: (list(map(str, value)) if isinstance(value, list) else
                   value if not isinstance(value, str) else str(value))
            for name, value in namedlist.items()}


def workflow_jobs(configfile: str | Path, directory: str | Path = ".", snakefile: str | Path = SNAKEFILE) -> list[Job]:
    """Every job of the default target under ``configfile`` in ``directory``, as Snakemake's DAG has it
    (the jobs with a provenance record; ``all`` has none). The config is validated by the workflow itself,
    whose errors end the process as they end a run."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    cwd, environ, path = os.getcwd(), dict(os.environ), list(sys.path)  # the Snakefile sets PYTHONPATH and sys.path
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), SnakemakeApi(OutputSettings()) as api:
            workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                                        config_settings=ConfigSettings(configfiles=[Path(configfile).resolve()]),
                                        snakefile=Path(snakefile).resolve(), workdir=Path(directory).resolve())
            workflow_api.dag(DAGSettings(forceall=True))
            workflow = workflow_api._workflow
            workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
            workflow._build_dag()
            jobs = []
            for job in workflow.dag.jobs:
                outputs = _named(job.output)
                if PROVENANCE_KEY not in outputs:
                    continue
                rule = job.rule
                script = os.path.normpath(os.path.join(str(rule.basedir), rule.script)) if rule.script else None
                jobs.append(Job(rule.name, {k: str(v) for k, v in job.wildcards_dict.items()},
                                {k: v for k, v in outputs.items() if k != PROVENANCE_KEY}, outputs[PROVENANCE_KEY],
                                dict(job.params.items()), _named(job.input), script))
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        sys.path[:] = path
    return sorted(jobs, key=lambda j: (j.provenance))
