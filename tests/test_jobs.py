"""A job that fails prints one line naming the cause and the fix on the terminal and in its log; the
traceback goes to the log only (issue 24)."""

import types

import pytest

from lorp.workflow import jobs


def smk(tmp_path, rule="evaluate_dense", batch_size=8):
    log = tmp_path / "job.log"
    return types.SimpleNamespace(rule=rule, threads=1, log=[str(log)], wildcards={}, output=[], input=[],
                                 params={}, config={"evaluation": {"batch_size": batch_size}}), log


def fail_with(tmp_path, capfd, monkeypatch, err, **kw):
    monkeypatch.delenv("LORP_WARM_SOCKET", raising=False)  # runs here, not in a warm fork
    # the job sizes the process's thread pools: not this test process's
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(jobs.threadpoolctl, "threadpool_limits", lambda n: None)
    monkeypatch.delitem(jobs.sys.modules, "torch", raising=False)
    job, log = smk(tmp_path, **kw)
    with pytest.raises(SystemExit) as caught:
        with jobs.job(job):
            raise err
    assert caught.value.code == 1
    terminal = capfd.readouterr().err
    return terminal, log.read_text()


def test_a_fixable_error_is_one_line_on_the_terminal_and_the_traceback_in_the_log(tmp_path, capfd, monkeypatch):
    terminal, log = fail_with(tmp_path, capfd, monkeypatch,
                              FileNotFoundError("corpus file data/x.txt does not exist"))
    line = f"[lorp] evaluate_dense failed: corpus file data/x.txt does not exist (traceback in {tmp_path / 'job.log'})"
    assert terminal.strip().splitlines() == [line]
    assert "Traceback (most recent call last)" in log and line in log


def test_out_of_memory_names_the_batch_size_to_lower(tmp_path, capfd, monkeypatch):
    class OutOfMemoryError(RuntimeError):  # torch.OutOfMemoryError, by name
        pass

    terminal, _ = fail_with(tmp_path, capfd, monkeypatch, OutOfMemoryError("CUDA out of memory. Tried to allocate"),
                            batch_size=16)
    assert "failed: out of memory (CUDA out of memory. Tried to allocate); lower evaluation.batch_size (now 16)" in terminal
    assert "Traceback" not in terminal


def test_an_unexpected_error_is_named_as_such(tmp_path, capfd, monkeypatch):
    terminal, log = fail_with(tmp_path, capfd, monkeypatch, ZeroDivisionError("division by zero"))
    assert "failed: ZeroDivisionError: division by zero (unexpected: please report it with the log)" in terminal
    assert "Traceback" not in terminal and "ZeroDivisionError" in log
    terminal, _ = fail_with(tmp_path, capfd, monkeypatch, KeyError("hidden_size"))  # a bare key: a bug
    assert "failed: KeyError: 'hidden_size' (unexpected" in terminal
    terminal, _ = fail_with(tmp_path, capfd, monkeypatch, KeyError("c.jsonl:3: no field 'text'"))  # a message
    assert "failed: c.jsonl:3: no field 'text' (traceback in" in terminal
