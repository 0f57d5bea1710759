"""scripts/bench_end_to_end.py times the whole training process against its own training seconds."""
import importlib.util
import json

from conftest import ROOT, sample_head


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_end_to_end_reports_the_whole_process_against_training(tmp_path, capsys):
    corpus = sample_head(tmp_path / "c.txt", 20_000)
    out = tmp_path / "e2e.json"
    _script("bench_end_to_end").main(["--corpus", str(corpus), "--arch", "cbow", "--epochs", "1", "--runs", "1",
                                      "--threads", "1", "--json", str(out)])
    r = json.loads(out.read_text())["cbow"]
    assert 0 < r["train_seconds"] < r["whole_seconds"] and r["ratio"] > 1      # start-up and reading cost too
    assert 10_000 < r["words"] <= 20_000                                       # one epoch of the corpus
    assert "| cbow |" in capsys.readouterr().out
