"""Bad input: clear message naming the file or key, exit code 2, and no half-written output."""
import subprocess
import sys

import pytest

from conftest import ROOT
from w2v.train import main


class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def run_cli(capsys):
    """Call the CLI's main() in-process (fast); one test below runs the real subprocess."""
    def run(tmp_path, config_text, *extra):
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(config_text)
        code = main(["--config", str(cfg), "--quiet", *extra])
        return Result(code, capsys.readouterr().err)
    return run


def config(corpus, out, extra=""):
    return f"corpus:\n  paths: [{corpus}]\noutput:\n  dir: {out}\n{extra}"


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text("the quick brown fox jumps over the lazy dog\n" * 50)
    return p


def _assert_clean_failure(result, out_dir, *needles):
    assert result.returncode == 2, result.stderr
    for n in needles:
        assert n in result.stderr, result.stderr
    assert not (out_dir / "word_embedding.txt").exists()
    assert not list(out_dir.glob("*.tmp")) if out_dir.exists() else True


def test_missing_corpus_file(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(tmp_path / "missing.txt", out))
    _assert_clean_failure(r, out, "missing.txt", "no such file")


def test_empty_corpus(run_cli, tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(tmp_path / "empty.txt", out))
    _assert_clean_failure(r, out, "contains no words")


def test_no_word_reaches_min_count(run_cli, tmp_path, corpus):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out, "vocab:\n  min_count: 1000\n"))
    _assert_clean_failure(r, out, "vocab.min_count=1000")


@pytest.mark.parametrize("extra,needle", [
    ("model:\n  windw: 3\n", "did you mean 'model.window'"),
    ("model:\n  window: 0\n", "'model.window' must be >= 1"),
    ("model:\n  dim: 0\n", "'model.dim' must be >= 1"),
    ("model:\n  negative: 0\n", "'model.negative' must be >= 1"),
])
def test_config_errors(run_cli, tmp_path, corpus, extra, needle):
    out = tmp_path / "out"
    r = run_cli(tmp_path, config(corpus, out, extra))
    _assert_clean_failure(r, out, needle, "cfg.yaml")


def test_fused_backend_without_compiler_stops_with_its_key(run_cli, tmp_path, corpus, monkeypatch):
    from w2v import ckernel
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("W2V_CACHE_DIR", str(tmp_path / "kernel-cache"))
    ckernel.reset()
    try:
        out = tmp_path / "out"
        r = run_cli(tmp_path, config(corpus, out, "train:\n  backend: fused\n"))
        _assert_clean_failure(r, out, "train.backend is 'fused'", "no C compiler", "no-such-cc")
    finally:
        ckernel.reset()


def test_config_not_yaml(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli(tmp_path, "corpus: [unclosed\n  : :\n")
    _assert_clean_failure(r, out, "not valid YAML", "cfg.yaml")


def test_unwritable_output_dir(run_cli, tmp_path, corpus):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    r = run_cli(tmp_path, config(corpus, blocker / "out"))
    assert r.returncode == 2 and "output.dir" in r.stderr, r.stderr
    assert blocker.read_text().startswith("a file")


def test_bad_override(run_cli, tmp_path, corpus):
    r = run_cli(tmp_path, config(corpus, tmp_path / "out"), "--set", "train.epochs=zero")
    assert r.returncode == 2 and "'train.epochs' must be an integer" in r.stderr


def test_real_process_exit_code(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(config(tmp_path / "missing.txt", tmp_path / "out"))
    r = subprocess.run([sys.executable, "-m", "w2v.train", "--config", str(cfg), "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "missing.txt" in r.stderr
