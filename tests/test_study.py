"""scripts/study_samplers.py writes its table (and keeps the prose around it) without matplotlib."""
import importlib.util
import json
import sys

from conftest import ROOT


def _study_and_corpus(tmp_path):
    """The study script as a module, and a tiny corpus."""
    spec = importlib.util.spec_from_file_location("study_samplers", ROOT / "scripts" / "study_samplers.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    corpus = tmp_path / "c.txt"
    corpus.write_text("the king rules the land and the queen rules the sea\n" * 300)
    return study, corpus


def test_study_writes_table_without_matplotlib(tmp_path, monkeypatch):
    study, corpus = _study_and_corpus(tmp_path)
    doc = tmp_path / "samplers.md"
    doc.write_text("# Title\n\nprose before\n\n<!-- study:t:begin -->\nold\n<!-- study:t:end -->\n\nprose after\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import matplotlib now fails
    study.main(["--corpus", str(corpus), "--arch", "skipgram", "cbow", "--strategies", "dns", "--cbow-strategies",
                "hs", "--min-count", "1", "--doc", str(doc), "--section", "t", "--work", str(tmp_path / "w")])
    text = doc.read_text()
    assert "prose before" in text and "prose after" in text and "\nold\n" not in text
    assert "| skipgram | DNS, top 5 of 20 candidates |" in text and "| cbow | hierarchical softmax" in text
    assert not (tmp_path / "samplers_t.png").exists()
    results = json.loads((tmp_path / "samplers_t.json").read_text())
    assert [r["strategy"] for r in results] == ["dns", "hs"] and len(results[0]["analogy_per_epoch"]) == 1


def test_equal_time_study_gives_epochs_by_the_probes_ratio(tmp_path, monkeypatch):
    study, corpus = _study_and_corpus(tmp_path)
    doc = tmp_path / "samplers.md"
    speeds = {"unigram": 1000.0, "two_group": 410.0}          # two_group at 0.41x: 2 of 5 epochs
    monkeypatch.setattr(study, "probe_words_per_sec", lambda args, arch, name, vocab: speeds[name])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    study.main(["--corpus", str(corpus), "--arch", "skipgram", "--strategies", "two_group", "unigram",
                "--epochs", "5", "--equal-time", "--min-count", "1", "--doc", str(doc), "--section", "e",
                "--work", str(tmp_path / "w")])
    results = json.loads((tmp_path / "samplers_e.json").read_text())
    assert [(r["strategy"], r["epochs"]) for r in results] == [("unigram", 5), ("two_group", 2)]
    assert all(r["backend"] in ("fused", "torch") for r in results)      # read from each run's train.log
    assert len(results[1]["analogy_per_epoch"]) == 2
    text = doc.read_text()
    assert "| skipgram | two-group" in text and "budget: the training seconds `unigram` took for 5 epochs" in text
