"""The install story stays true: one set of pins, README and CI agreeing on the commands."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_dependency_is_pinned_exactly():
    project = pyproject()
    deps = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", d) for d in deps), deps
    assert {d.split("==")[0] for d in project["dependencies"]} >= {"torch", "transformers", "snakemake"}


def test_the_environment_holds_the_pinned_versions():
    """Every required dependency is installed at its pin (a local build tag such as ``+cpu`` aside), so the
    tests run what the README installs."""
    for dep in pyproject()["dependencies"]:
        name, pin = dep.split("==")
        installed = metadata.version(name.split("[")[0])
        assert installed.split("+")[0] == pin, (name, installed, pin)


def env_pins(path):
    """The pip packages of a conda environment; each must be pinned (``--no-deps``-style options aside)."""
    env = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    unpinned = [p for p in pip if "==" not in p and not p.startswith("--")]
    assert not unpinned, (path.name, unpinned)
    return {p for p in pip if "==" in p}


def test_conda_envs_mirror_pyproject_and_every_rule_has_one():
    project = pyproject()
    allowed = set(project["dependencies"]) | set(project["optional-dependencies"]["embedded"])
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert {e.stem for e in envs} == {"model", "analysis", "evaluation"}
    union = set()
    for env in envs:
        pins = env_pins(env)
        assert pins <= allowed, (env.name, pins - allowed)  # same versions as pyproject.toml
        union |= pins
    scheduler_only = {d for d in allowed if d.startswith(("snakemake", "pyyaml", "jsonschema"))}
    assert union == allowed - scheduler_only  # every runtime dependency is in some environment
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        rules = re.findall(r"^rule (\w+):", text, flags=re.M)
        envs_used = re.findall(r'conda:\n\s+"\.\./envs/(\w+)\.yaml"', text)
        assert len(envs_used) == len(rules), smk.name  # one conda directive per rule
        assert all((ROOT / "envs" / f"{e}.yaml").is_file() for e in envs_used)


def test_slurm_profiles_exist_where_snakemake_looks():
    site = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())  # `--profile slurm` from the root
    assert site["executor"] == "slurm" and site["default-resources"]["slurm_partition"]
    workflow = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert "set-resources" in workflow and "gpu" not in str(workflow.get("set-resources", {}).get("similarity"))


def test_ci_runs_the_readme_test_command_with_the_embedded_pin():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    assert len(commands) >= 2
    main_cmd, test_cmd = commands[0], commands[1]
    assert "snakemake --cores 2" in main_cmd and "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text()
    (embedded,) = pyproject()["optional-dependencies"]["embedded"]
    assert f"--no-deps {embedded}" in main_cmd and f"--no-deps {embedded}" in test_cmd
