"""The install story stays true: one set of pins, README and CI agreeing on the commands."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_dependency_is_pinned_exactly():
    project = pyproject()
    deps = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", d) for d in deps), deps
    assert "torch==2.13.0" in project["dependencies"]


def test_conda_env_mirrors_pyproject():
    env = yaml.safe_load((ROOT / "envs" / "lorp.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = {p for p in pip if "==" in p}
    project = pyproject()
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["embedded"])
    wanted -= {d for d in wanted if d.startswith("snakemake")}  # the env runs jobs, not the scheduler
    assert pins == wanted


def test_ci_runs_the_readme_test_command_with_the_embedded_pin():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    assert len(commands) >= 2
    main_cmd, test_cmd = commands[0], commands[1]
    assert "snakemake --cores 2" in main_cmd and "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text()
    (embedded,) = pyproject()["optional-dependencies"]["embedded"]
    assert f"--no-deps {embedded}" in main_cmd and f"--no-deps {embedded}" in test_cmd
