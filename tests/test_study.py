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


def _equal_time(study, corpus, doc, tmp_path, monkeypatch, speeds: dict, section: str) -> None:
    """An equal-time study of the strategies of `speeds` (in that order), whose probes measure those
    words/s (no fixed cost per epoch)."""
    monkeypatch.setattr(study, "probe", lambda args, arch, name, vocab: {
        "words_per_sec": speeds[name], "fixed_seconds": 0.0, "varying_seconds": 1e4 / speeds[name]})
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    study.main(["--corpus", str(corpus), "--arch", "skipgram", "--strategies", *speeds, "--epochs", "5",
                "--equal-time", "--min-count", "1", "--doc", str(doc), "--section", section,
                "--work", str(tmp_path / "w")])


def test_equal_time_study_gives_epochs_by_the_probes_ratio(tmp_path, monkeypatch):
    study, corpus = _study_and_corpus(tmp_path)
    doc = tmp_path / "samplers.md"
    # two_group at 0.41x: 2 of 5 epochs
    _equal_time(study, corpus, doc, tmp_path, monkeypatch, {"two_group": 410.0, "unigram": 1000.0}, "e")
    results = json.loads((tmp_path / "samplers_e.json").read_text())
    assert [(r["strategy"], r["epochs"]) for r in results] == [("unigram", 5), ("two_group", 2)]
    assert all(r["backend"] in ("fused", "torch") for r in results)      # read from each run's train.log
    assert len(results[1]["analogy_per_epoch"]) == 2
    text = doc.read_text()
    assert "| skipgram | two-group" in text and "budget: the training seconds `unigram` took for 5 epochs" in text


def test_fit_budget_counts_a_fixed_cost_once_and_cuts_to_a_prefix_when_no_epoch_fits(tmp_path):
    study, _ = _study_and_corpus(tmp_path)
    base = {"fixed_seconds": 0.0, "varying_seconds": 10.0}          # unigram: 10 s an epoch, budget 50 s
    assert study.fit_budget(5, base, {"fixed_seconds": 0.0, "varying_seconds": 20.0}) == (2, 1.0)  # 2.5 -> 2
    # a 5 s pool build per epoch plus 20 s of tokens: 25 s an epoch, 2 fit (scaled naively, 1 would)
    assert study.fit_budget(5, base, {"fixed_seconds": 5.0, "varying_seconds": 20.0}) == (2, 1.0)
    epochs, share = study.fit_budget(5, base, {"fixed_seconds": 10.0, "varying_seconds": 160.0})
    assert epochs == 1 and abs(share - 0.25) < 1e-9                   # (50 - 10) / 160 of one epoch


def test_equal_time_study_trains_a_prefix_when_not_one_epoch_fits(tmp_path, monkeypatch):
    study, corpus = _study_and_corpus(tmp_path)
    doc = tmp_path / "samplers.md"
    # 0.1x: half of one epoch in 5
    _equal_time(study, corpus, doc, tmp_path, monkeypatch, {"unigram": 1000.0, "nce": 100.0}, "p")
    results = json.loads((tmp_path / "samplers_p.json").read_text())
    nce = results[1]
    assert nce["strategy"] == "nce" and nce["epochs"] == 1 and abs(nce["share"] - 0.5) < 1e-9
    ratio = nce["words_per_epoch"] / results[0]["words_per_epoch"]
    assert 0.35 < ratio < 0.65, ratio                                   # half the corpus's tokens trained
    assert "| 0.50 |" in doc.read_text()
    # The section can be written again from the JSON alone (no training), words/s the epochs' median.
    study.main(["--corpus", str(corpus), "--from-json", str(tmp_path / "samplers_p.json"), "--equal-time",
                "--budget", "skipgram=12", "--section", "again", "--doc", str(doc), "--command", "the study"])
    again = doc.read_text().split("<!-- study:again:begin -->")[1]
    assert "Command: `the study`" in again and "skipgram 12 s" in again and "| 0.50 |" in again
    wps = f"{study.median_words_per_sec(results[0]):,.0f}"
    assert f"| fused | {wps} |" in again or f"| torch | {wps} |" in again
