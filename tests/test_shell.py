"""The shell through the real command line: training without a YAML file, --help, the curve in
metrics.json, the projector files and the plot scripts."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import ROOT, sample_head
from w2v.config import Config
from w2v.keyedvectors import KeyedVectors
from w2v.train import main

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed (the 'plot' extra)")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _python(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _script(name):
    """scripts/NAME.py imported as a module, for its helpers."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return sample_head(tmp_path_factory.mktemp("corpus") / "head.txt", 30_000)


def _saved_config(out):
    return yaml.safe_load((out / "config.yaml").read_text())


def test_corpus_alone_trains_with_the_defaults(corpus, tmp_path):
    r = _python("-m", "w2v.train", "--corpus", corpus, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "runs" / "default"  # output.dir's default, relative to where it ran
    saved, defaults = _saved_config(out), Config().to_dict()
    assert saved["corpus"]["paths"] == [str(corpus)]
    assert saved["model"].pop("shared_negatives") is True   # 'auto', settled for the CPU
    defaults["model"].pop("shared_negatives")
    for section in ("model", "vocab"):
        assert saved[section] == defaults[section]
    assert {k: saved["train"][k] for k in ("epochs", "alpha", "threads", "device")} == \
        {k: defaults["train"][k] for k in ("epochs", "alpha", "threads", "device")}
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["epochs"]] == [1, 2, 3, 4, 5]
    kv = KeyedVectors.load_word2vec_format(out / "word_embedding.txt")
    assert kv.vector_size == 100 and len(kv) == metrics["vocab_size"]


def test_flags_set_their_keys(corpus, tmp_path):
    out = tmp_path / "out"
    code = main(["--corpus", str(corpus), "--output", str(out), "--arch", "cbow", "--dim", "12", "--window", "3",
                 "--negative", "2", "--min-count", "3", "--sample", "0.0001", "--alpha", "0.05", "--epochs", "1",
                 "--threads", "1", "--device", "cpu", "--quiet"])
    assert code == 0
    cfg = _saved_config(out)
    assert cfg["model"]["arch"] == "cbow" and cfg["model"]["dim"] == 12 and cfg["model"]["window"] == 3
    assert cfg["model"]["negative"] == 2 and cfg["model"]["sample"] == 0.0001
    assert cfg["vocab"]["min_count"] == 3
    assert cfg["train"]["alpha"] == 0.05 and cfg["train"]["epochs"] == 1
    assert cfg["train"]["threads"] == 1 and cfg["train"]["device"] == "cpu"
    assert KeyedVectors.load_word2vec_format(out / "word_embedding.txt").vector_size == 12


def test_flags_override_the_config_file_and_set_overrides_both(corpus, tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(f"corpus:\n  paths: [{corpus}]\nmodel:\n  dim: 30\n  window: 2\ntrain:\n  epochs: 1\n"
                        f"  threads: 1\noutput:\n  dir: {tmp_path / 'from_file'}\n")
    out = tmp_path / "out"
    code = main(["--config", str(cfg_file), "--output", str(out), "--dim", "8", "--set", "model.window=4",
                 "--set", "train.epochs=2", "--quiet"])
    assert code == 0
    cfg = _saved_config(out)
    assert cfg["model"]["dim"] == 8 and cfg["model"]["window"] == 4 and cfg["train"]["epochs"] == 2
    assert not (tmp_path / "from_file").exists()


def test_several_corpus_paths_and_a_comma_in_a_name(tmp_path):
    a, b = sample_head(tmp_path / "a,1.txt", 5_000), sample_head(tmp_path / "b.txt", 5_000)
    out = tmp_path / "out"
    assert main(["--corpus", str(a), str(b), "--output", str(out), "--epochs", "1", "--threads", "1",
                 "--min-count", "1", "--quiet"]) == 0
    assert _saved_config(out)["corpus"]["paths"] == [str(a), str(b)]


def test_a_flag_and_a_set_of_its_key_conflict(corpus, tmp_path, capsys):
    code = main(["--corpus", str(corpus), "--output", str(tmp_path / "out"), "--dim", "50",
                 "--set", "model.dim=20", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--dim" in err and "--set model.dim" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_flag_values_exit_2(corpus, tmp_path):
    r = _python("-m", "w2v.train", "--corpus", corpus, "--dim", "many", cwd=tmp_path)
    assert r.returncode == 2 and "--dim" in r.stderr and "Traceback" not in r.stderr
    r = _python("-m", "w2v.train", "--corpus", corpus, "--arch", "glove", cwd=tmp_path)
    assert r.returncode == 2 and "--arch" in r.stderr and "skipgram" in r.stderr
    r = _python("-m", "w2v.train", "--corpus", corpus, "--window", "0", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "model.window" in r.stderr and "Traceback" not in r.stderr
    # A range error names the flag the value came from, not --set or a file.
    assert "error: --window: 'model.window'" in r.stderr and "--set" not in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()


def test_no_corpus_and_no_config_says_what_to_give(tmp_path):
    r = _python("-m", "w2v.train", cwd=tmp_path)
    assert r.returncode == 2
    assert "--corpus" in r.stderr and "--config" in r.stderr and "Traceback" not in r.stderr


def test_help_shows_the_main_options_with_their_defaults(tmp_path):
    r = _python("-m", "w2v.train", "--help", cwd=tmp_path)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # argparse wraps lines
    defaults = Config()
    for flag, key, value in [("--arch", "model.arch", defaults.model.arch), ("--dim", "model.dim", defaults.model.dim),
                             ("--window", "model.window", defaults.model.window),
                             ("--negative", "model.negative", defaults.model.negative),
                             ("--epochs", "train.epochs", defaults.train.epochs),
                             ("--threads", "train.threads", defaults.train.threads),
                             ("--device", "train.device", defaults.train.device)]:
        assert flag in text and f"{key} (default: {value}" in text, flag
    assert "--corpus" in text and "--output" in text and "--config" in text and "--set" in text
    assert "Configuration" in text and "README" in text  # where every other key is described
    assert "-size" in text and "-iter" in text  # the word2vec.c names, for its users


# --- embedding projector -------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [50, 100_000])
def test_projector_files_are_aligned_with_the_vectors(corpus, tmp_path, limit):
    out = tmp_path / "out"
    assert main(["--corpus", str(corpus), "--output", str(out), "--dim", "7", "--epochs", "1", "--threads", "1",
                 "--quiet", "--set", "output.projector=true", "--set", f"output.projector_words={limit}"]) == 0
    kv = KeyedVectors.load_word2vec_format(out / "word_embedding.txt")
    rows = min(limit, len(kv))
    vectors = np.loadtxt(out / "vectors.tsv", delimiter="\t", dtype=np.float32, ndmin=2)
    words = (out / "metadata.tsv").read_text(encoding="utf-8").split("\n")
    assert words[-1] == "" and len(words) - 1 == rows  # one word a line, no header row
    assert vectors.shape == (rows, 7)
    # The most frequent words, each beside its own vector.
    assert words[:-1] == kv.index_to_key[:rows]
    assert np.allclose(vectors, kv.vectors[:rows], rtol=1e-5, atol=1e-7)


def test_no_projector_files_unless_asked(two_runs):
    assert not (two_runs[0] / "vectors.tsv").exists() and not (two_runs[0] / "metadata.tsv").exists()


def test_projector_words_must_be_positive(corpus, tmp_path, capsys):
    code = main(["--corpus", str(corpus), "--output", str(tmp_path / "out"), "--quiet",
                 "--set", "output.projector=true", "--set", "output.projector_words=0"])
    assert code == 2 and "output.projector_words" in capsys.readouterr().err


# --- plot scripts -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_runs(corpus, tmp_path_factory):
    """A skip-gram and a CBOW run of 3 epochs on the small corpus, in chunks of 1024 tokens so that
    the curve has more than 50 rounds to take its points from."""
    runs = []
    for arch in ("skipgram", "cbow"):
        out = tmp_path_factory.mktemp(arch)
        assert main(["--corpus", str(corpus), "--output", str(out), "--arch", arch, "--dim", "16",
                     "--epochs", "3", "--threads", "1", "--quiet", "--set", "train.chunk_tokens=1024"]) == 0
        runs.append(out)
    return runs


def test_metrics_json_holds_the_curve(two_runs):
    for out in two_runs:
        metrics = json.loads((out / "metrics.json").read_text())
        curve, epochs = metrics["curve"], metrics["epochs"]
        assert len(curve) >= 50
        words = [p["words"] for p in curve]
        assert all(b > a for a, b in zip(words, words[1:]))
        assert words[-1] == sum(row["words"] for row in epochs)  # the curve ends where training did
        assert [p["epoch"] for p in curve] == sorted(p["epoch"] for p in curve)
        assert {p["epoch"] for p in curve} == {1, 2, 3}
        lrs = [p["lr"] for p in curve]
        assert all(b <= a for a, b in zip(lrs, lrs[1:])) and lrs[0] < 0.025 and lrs[-1] < 0.001
        assert all(p["words_per_sec"] is None or p["words_per_sec"] > 0 for p in curve)
        # The epoch's last point is its running loss at the end: the per-epoch row's loss.
        for row in epochs:
            last = [p for p in curve if p["epoch"] == row["epoch"]][-1]
            assert last["loss"] == pytest.approx(row["loss"], rel=1e-6)


def _is_png(path):
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000


@needs_matplotlib
def test_plot_metrics_writes_a_png_of_several_runs(two_runs, tmp_path):
    png = tmp_path / "m.png"
    r = _python(ROOT / "scripts" / "plot_metrics.py", *two_runs, "-o", png, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _is_png(png)


def test_plot_metrics_series_and_scores():
    plot_metrics = _script("plot_metrics")
    rows = [{"epoch": 1, "loss": 3.0, "words": 100, "words_per_sec": 10.0, "seconds": 1.0, "analogy": 0.1},
            {"epoch": 2, "loss": 2.5, "words": 100, "words_per_sec": 12.0, "seconds": 1.0, "analogy": 0.2}]
    # Without a curve: one point per epoch at the cumulative words.
    assert plot_metrics.series({"epochs": rows}) == ([100, 200], [3.0, 2.5], [10.0, 12.0])
    curve = [{"words": 50, "loss": 3.5, "words_per_sec": 9.0}, {"words": 200, "loss": 2.4, "words_per_sec": None}]
    assert plot_metrics.series({"epochs": rows, "curve": curve}) == ([50, 200], [3.5, 2.4], [9.0, None])
    assert plot_metrics.scores({"epochs": rows}) == {"analogy": [(1, 0.1), (2, 0.2)]}


def test_plot_metrics_names_a_folder_without_metrics(tmp_path):
    r = _python(ROOT / "scripts" / "plot_metrics.py", tmp_path / "nothing", "-o", tmp_path / "m.png", cwd=tmp_path)
    assert r.returncode == 2 and "nothing" in r.stderr and "metrics.json" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("script", ["plot_metrics", "plot_words"])
def test_plot_scripts_without_matplotlib_say_how_to_install_it(script, two_runs, tmp_path):
    target = two_runs[0] if script == "plot_metrics" else two_runs[0] / "word_embedding.txt"
    hide = ("import runpy, sys; sys.modules['matplotlib'] = None; "
            f"sys.argv = ['{script}.py', {str(target)!r}, 'the', '-o', 'x.png']; "
            f"runpy.run_path({str(ROOT / 'scripts' / (script + '.py'))!r}, run_name='__main__')")
    if script == "plot_metrics":
        hide = hide.replace(", 'the'", "")
    r = _python("-c", hide, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "matplotlib" in r.stderr and ".[plot]" in r.stderr and "Traceback" not in r.stderr


@needs_matplotlib
def test_plot_words_writes_a_png(two_runs, tmp_path):
    png = tmp_path / "w.png"
    vectors = two_runs[0] / "word_embedding.txt"
    r = _python(ROOT / "scripts" / "plot_words.py", vectors, "war", "government", "--analogy", "the", "of", "and",
                "-o", png, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _is_png(png)


def test_plot_words_names_unknown_words(two_runs, tmp_path):
    r = _python(ROOT / "scripts" / "plot_words.py", two_runs[0] / "word_embedding.txt", "war", "zzqx", "qqzz",
                "-o", tmp_path / "w.png", cwd=tmp_path)
    assert r.returncode == 2 and "'zzqx'" in r.stderr and "'qqzz'" in r.stderr and "'war'" not in r.stderr
    assert not (tmp_path / "w.png").exists()


def test_plot_words_selects_neighbours_and_the_analogy_answer(two_runs):
    plot_words = _script("plot_words")
    kv = KeyedVectors.load_word2vec_format(two_runs[0] / "word_embedding.txt")
    groups, arrows = plot_words.select(kv, ["war", "government"], ("the", "of", "and"), topn=4, restrict=1000)
    assert groups[0] == ("war", [w for w, _ in kv.most_similar("war", topn=4, restrict_vocab=1000)])
    assert len(groups[1][1]) == 4 and "government" not in groups[1][1]
    answer = kv.most_similar(positive=["of", "and"], negative=["the"], topn=1, restrict_vocab=1000)[0][0]
    assert answer not in ("the", "of", "and")
    assert arrows == [("the", "of"), ("and", answer)]
    assert [q for q, _ in groups[2:]] == ["the", "of", "and", answer]


def test_pca_2d_finds_the_two_widest_directions():
    rng = np.random.default_rng(0)
    # Spread 10 along axis 3, 3 along axis 0, 0.1 elsewhere: the map is axes 3 and 0, in that order.
    x = rng.normal(size=(200, 6)) * np.array([3, 0.1, 0.1, 10, 0.1, 0.1]) + 5
    xy = _script("plot_words").pca_2d(x)
    assert xy.shape == (200, 2)
    assert abs(np.corrcoef(xy[:, 0], x[:, 3])[0, 1]) > 0.99
    assert abs(np.corrcoef(xy[:, 1], x[:, 0])[0, 1]) > 0.99
    assert np.allclose(xy.mean(axis=0), 0, atol=1e-9)


def test_label_shifts_keep_labels_apart():
    shifts = _script("plot_words").label_shifts
    # Five words on one spot (and a far corner to give the map a size): stacked one line apart.
    xy = np.array([[0.0, 0.0]] * 5 + [[10.0, 10.0]])
    out = shifts(xy, ["alpha", "beta", "gamma", "delta", "eps", "far"])
    assert out[0] == 0 and out[-1] == 0
    assert len(set(out[:5])) == 5 and all(b < a for a, b in zip(out[:5], out[1:5]))
    # Words far apart keep their places.
    assert shifts(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), ["a", "b", "c"]) == [0, 0, 0]
