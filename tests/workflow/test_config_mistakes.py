"""A mistake in the config never costs results that were good: on the completed tiny run, a real run with a
mistyped model source, or a calibration file that is empty or not JSON lines, stops before any job with one
line naming the key, and changes no file (the ``completed`` fixture checks that); a calibration that asks for
more text than its corpus holds is refused by a dry run. The mistaken configs are written outside the run."""

import pytest

from tiny import snakemake, tiny_config
from tinyrun import dry_run

pytestmark = pytest.mark.slow


def _mistakes(tmp_path):
    """name -> (the tiny config with one mistake, the line the run must print)."""
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    not_json = tmp_path / "docs.jsonl"
    not_json.write_text('text: "a line of YAML, not JSON"\n{"text": "a good line after it"}\n')
    calib = {"n_samples": 4, "seqlen": 64}
    return {
        "model source": (tiny_config(models={"smol": {"source": "nope_model_dir"}}),
                         "models.smol.source: 'nope_model_dir' is neither an existing path"),
        "empty file": (tiny_config(calibration={"docs": {"source": str(empty), **calib}}),
                       f"calibration.docs.source: {empty}: the file is empty;"),
        "not JSON": (tiny_config(calibration={"docs": {"source": str(not_json), **calib}}),
                     f"calibration.docs.source: {not_json}: line 1 is not valid JSON"),
    }


@pytest.mark.parametrize("mistake", ["model source", "empty file", "not JSON"])
def test_a_mistaken_source_stops_a_real_run_before_any_job(completed, tmp_path, mistake):
    config, line = _mistakes(tmp_path)[mistake]
    out = snakemake(completed, config, "--cores", "1", configfile=tmp_path / "config.yaml")
    assert out.returncode != 0
    assert f"\n  {line}" in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "rule " not in out.stdout + out.stderr  # no job was even planned


def test_too_many_samples_for_the_corpus_is_refused_and_the_run_is_still_complete(completed, tmp_path):
    config = tiny_config(calibration={"docs": {"source": "python-docs", "n_samples": 100000, "seqlen": 64}})
    out = snakemake(completed, config, "-n", configfile=tmp_path / "config.yaml")
    assert out.returncode != 0
    assert ("\n  calibration.docs.n_samples: 100000 windows of 64 tokens need 6400000 tokens, and the calibration "
            "part of python-docs holds at most ") in out.stderr, out.stderr[-3000:]
    assert dry_run(completed, tiny_config()) == {}  # the original config: nothing to be done
