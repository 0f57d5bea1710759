"""What trying to break a run found, each as a test through the command line: concurrent runs on
one folder, output sets, corpus folders holding runs, duplicate keys and words, symlinked folders,
closed stderr, full disks, unchecked config values, alias bombs, and the terminal output."""
import contextlib
import errno
import fcntl
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest

from conftest import ROOT, sample_head
from w2v import lock, outputset
from w2v.config import build_config
from w2v.export import load_word2vec
from w2v.train import main

SMALL = ["--set", "train.threads=1", "--set", "train.device=cpu", "--set", "model.dim=8",
         "--set", "train.epochs=1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return sample_head(tmp_path_factory.mktemp("rel") / "head.txt", 20_000)


def _cfg(tmp_path, corpus, out, extra=""):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"corpus:\n  paths: [{corpus}]\noutput:\n  dir: {out}\n{extra}")
    return cfg


def _cli(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "w2v.train", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, **kw)


def _start(cfg, *extra, **popen):
    """Start the CLI on `cfg` with SMALL settings (4096-token chunks) and `extra` options."""
    return subprocess.Popen([sys.executable, "-m", "w2v.train", "--config", str(cfg), *SMALL,
                             "--set", "train.chunk_tokens=4096", *extra], cwd=ROOT, **popen)


def _interrupt_at_chunk_3(cfg):
    """A run stopped by Ctrl-C at its third chunk (exit 130, a mid-epoch checkpoint)."""
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_driver.py"), "chunk3", "SIGINT",
                        "--config", str(cfg), "--quiet", *SMALL, "--set", "train.chunk_tokens=4096"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 130, r.stderr


def _in_process(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


# --- 1. a lock on output.dir, and on a shared corpus.cache_dir --------------------------------

@pytest.mark.slow
def test_second_run_on_a_live_runs_folder_is_refused_and_harms_nothing(tmp_path, corpus):
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, corpus, out)
    # A run that checkpoints after every chunk, long enough to be alive through the attempts below.
    first = _start(cfg, "--quiet", "--set", "train.epochs=400", "--set", "train.checkpoint_minutes=0.0001",
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
        time.sleep(0.05)
    (tmp_path / "bad.txt").write_text("not a vocabulary\n")
    for _ in range(3):
        r = _cli("--config", cfg, "--quiet", "--set", f"vocab.path={tmp_path / 'bad.txt'}")
        assert r.returncode == 2, r.stderr
        assert f"error: {out}: another w2v run (pid {first.pid}) is using this folder (output.dir)" in r.stderr
    assert first.poll() is None, "the live run died: " + first.stderr.read()
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130 and "checkpoint written" in err and "No such file" not in err, err
    assert "another w2v run" not in (out / "train.log").read_text()  # the refused runs wrote nothing there


def test_a_killed_runs_lock_is_released(tmp_path, corpus, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from w2v.lock import output_lock; "
                               "output_lock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)",
                               str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, out), "--quiet", *SMALL)
    assert code == 2 and f"(pid {holder.pid})" in err and "output.dir" in err, err
    holder.kill()
    holder.wait()
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, out), "--quiet", *SMALL)
    assert code == 0, err
    assert outputset.check(out) == []


@pytest.mark.slow
def test_two_runs_sharing_a_cache_encode_it_once_and_agree(tmp_path, corpus):
    cache = tmp_path / "cache"
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        cfg = _cfg(tmp_path / name, corpus, tmp_path / name / "out")
        runs.append(subprocess.Popen([sys.executable, "-m", "w2v.train", "--config", str(cfg), "--quiet", *SMALL,
                                      "--set", f"corpus.cache_dir={cache}"], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    a, b = (load_word2vec(tmp_path / n / "out" / "word_embedding.txt")[1] for n in ("a", "b"))
    assert np.array_equal(a, b)  # same seed, one thread: a corrupt cache would show here
    assert len(list(cache.glob("corpus-*.ids"))) == 1 and not list(cache.glob(".*.tmp"))


# --- 2. the output set is one run's -----------------------------------------------------------

def test_disk_full_during_export_keeps_the_previous_set(tmp_path, corpus, capsys, monkeypatch):
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, corpus, out)
    assert _in_process(capsys, "--config", cfg, "--quiet", *SMALL, "--set", "model.dim=4")[0] == 0
    before = {n: (out / n).read_bytes() for n in outputset.SET_NAMES if (out / n).exists()}
    from w2v import trainer
    real = trainer.save_config

    def full(*a, **k):  # the vectors are written; the disk fills up at the config
        raise OSError(errno.ENOSPC, "No space left on device", str(a[1]))
    monkeypatch.setattr(trainer, "save_config", full)
    code, err = _in_process(capsys, "--config", cfg, "--quiet", *SMALL, "--set", "model.dim=30")
    assert code == 2 and "disk full" in err and "output set already there is untouched" in err, err
    assert {n: (out / n).read_bytes() for n in outputset.SET_NAMES if (out / n).exists()} == before
    assert outputset.check(out) == [] and not list(out.glob(".staging-*"))
    monkeypatch.setattr(trainer, "save_config", real)


def test_rerun_without_binary_removes_the_old_binary(tmp_path, corpus, capsys):
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, corpus, out)
    assert _in_process(capsys, "--config", cfg, "--quiet", *SMALL)[0] == 0
    assert (out / "word_embedding.bin").exists()
    assert _in_process(capsys, "--config", cfg, "--quiet", *SMALL, "--set", "output.binary=false",
                       "--set", "train.seed=2")[0] == 0
    assert not (out / "word_embedding.bin").exists() and outputset.check(out) == []


# --- 3. a corpus folder that holds the output folder ------------------------------------------

def test_corpus_folder_holding_the_output_folder_skips_it(tmp_path, corpus, capsys):
    nest = tmp_path / "nest"
    nest.mkdir()
    shutil.copy(corpus, nest / "text.txt")
    out = nest / "out"
    cfg = _cfg(tmp_path, nest, out)
    args = ["--config", cfg, *SMALL, "--set", f"corpus.cache_dir={nest / 'cache'}"]
    code, err = _in_process(capsys, *args)
    assert code == 0, err
    first = (out / "vocab.txt").read_text()
    code, err = _in_process(capsys, *args)
    assert code == 0, err
    assert (out / "vocab.txt").read_text() == first  # its own log, checkpoint and vectors were not read
    assert f"{out}: skipped, a w2v run's output or cache folder" in (out / "train.log").read_text()


# --- 4. duplicate YAML keys ------------------------------------------------------------------

def test_duplicate_section_is_an_error_naming_both_lines(tmp_path, corpus, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"corpus:\n  paths: [{corpus}]\ntrain:\n  epochs: 3\n  threads: 1\nmodel:\n  dim: 8\n"
                   f"train:\n  seed: 2\n")
    code, err = _in_process(capsys, "--config", cfg, "--quiet")
    assert code == 2 and f"{cfg}: line 8: duplicate key 'train' (first at line 3)" in err, err


# --- 5. duplicate words and bad counts in vocab.path ------------------------------------------

@pytest.mark.parametrize("text,needle", [
    ("the 10\nof 5\nthe 3\n", "line 3: 'the' is listed twice (first at line 1)"),
    ("the 10\nof 0\n", "line 2: the count of 'of' is 0"),
    ("the 10\nof -4\n", "line 2: expected 'word count'"),
    ("the 10\nof \u00b2\n", "line 2: expected 'word count'"),
    ("the 99999999999999999999\n", "line 1: expected 'word count'"),
])
def test_bad_vocab_path_names_file_and_line(tmp_path, corpus, capsys, text, needle):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(text)
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, tmp_path / "out"), "--quiet",
                            "--set", f"vocab.path={vocab}")
    assert code == 2 and f"{vocab}, {needle}" in err, err


# --- 6. symlinked sub-folders -----------------------------------------------------------------

def test_symlinked_subfolder_is_followed_and_a_loop_is_skipped(tmp_path, capsys):
    top, elsewhere = tmp_path / "top", tmp_path / "elsewhere"
    top.mkdir()
    elsewhere.mkdir()
    (top / "a.txt").write_text("alpha beta gamma one two three four five six\n" * 300)
    (elsewhere / "b.txt").write_text("delta epsilon seven eight nine ten eleven\n" * 300)
    (top / "linked").symlink_to(elsewhere)
    (top / "loop").symlink_to(top)
    out = tmp_path / "out"
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, top, out), *SMALL)
    assert code == 0, err
    words = (out / "vocab.txt").read_text().split()[::2]
    assert {"alpha", "delta", "epsilon"} <= set(words)
    assert "loop: skipped, a symbolic link to a folder already read" in err


# --- 7. nobody reading stderr ------------------------------------------------------------------

@pytest.mark.slow
def test_closed_stderr_never_stops_training(tmp_path, corpus):
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, corpus, out)
    child = _start(cfg, "--set", "train.epochs=3", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stderr.readline()  # the first log line: the run is going; then the reader goes away
    child.stderr.close()
    child.stdout.close()
    assert child.wait(timeout=300) == 0
    log = (out / "train.log").read_text()
    assert "epoch 3/3" in log and "wrote" in log and "Logging error" not in log
    assert outputset.check(out) == []


@pytest.mark.slow
def test_ctrl_c_with_closed_stderr_still_checkpoints_and_exits_130(tmp_path, corpus):
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, corpus, out)
    child = _start(cfg, "--set", "train.epochs=400", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while b"encoded corpus" not in child.stderr.readline():
        assert child.poll() is None
    child.stderr.close()  # `| tee` died first
    time.sleep(1)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=120) == 130
    assert "interrupted; checkpoint written" in (out / "train.log").read_text()
    assert (out / "checkpoint.pt").exists()


# --- 11. a full disk ---------------------------------------------------------------------------

@contextlib.contextmanager
def _tiny_disk(tmp_path, size_kb):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder):
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


def test_full_disk_is_reported_before_any_pass(tmp_path, corpus, capsys):
    with _tiny_disk(tmp_path, 256) as disk:
        _fill(disk)
        code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, disk / "out"), *SMALL)
        assert code == 2 and "No space left on device (disk full" in err, err
        assert "vocabulary:" not in err and "Logging error" not in err and "Traceback" not in err


def test_disk_filling_mid_run_stops_with_a_message_and_logging_never_raises(tmp_path, corpus, capsys):
    with _tiny_disk(tmp_path, 400) as disk:
        # Room for the lock, the log's first lines and the cache, not for the checkpoint.
        code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, disk / "out"), *SMALL,
                                "--set", "model.dim=200")
        assert code == 2 and "disk full" in err, err
        assert "Logging error" not in err and "Traceback" not in err
        assert not list((disk / "out").glob(".staging-*"))


# --- 13, 14 and issue 15 item 3: config values and where errors say they came from ------------

@pytest.mark.parametrize("sets,needle", [
    (["model.dim=[100"], "error: --set model.dim: not valid YAML"),
    (["train.epochs=1e30"], "error: --set train.epochs: 'train.epochs' must be >= 1 and <= 100,000"),
    (["model.ns_exponent=1e6"], "'model.ns_exponent' must be >= 0 and <= 10"),
    (["train.seed=1e30"], "'train.seed' must be >= 0"),
    (["train.alpha=nan"], "'train.alpha' must be a finite number"),
    (["model.window=0"], "error: --set model.window: 'model.window' must be >= 1"),
    (["model.sampler=dns", "model.negative=25"], "'model.dns_candidates' must be >= model.negative (25) with model.sampler: dns"),
])
def test_config_values_are_checked_and_errors_name_set(tmp_path, corpus, capsys, sets, needle):
    args = [a for s in sets for a in ("--set", s)]
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, tmp_path / "out"), "--quiet", *args)
    assert code == 2 and needle in err, err


def test_negative_above_20_trains_without_dns(tmp_path, corpus, capsys):
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, tmp_path / "out"), "--quiet", *SMALL,
                            "--set", "model.negative=25")
    assert code == 0, err


def test_config_file_not_utf8_names_the_line(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_bytes(b"train:\n  epochs: 2\ncorpus:\n  paths: [caf\xe9.txt]\n")
    code, err = _in_process(capsys, "--config", cfg)
    assert code == 2 and f"error: {cfg}: line 4: not UTF-8 (byte 0xe9)" in err, err


def test_set_list_elements_are_stripped():
    assert build_config({}, overrides=["corpus.paths=a.txt, b.txt ,c.txt"]).corpus.paths == ["a.txt", "b.txt", "c.txt"]


def test_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path, capsys):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("\n".join(levels) + "\ntrain:\n  epochs: *i\n")
    t0 = time.perf_counter()
    code, err = _in_process(capsys, "--config", cfg)
    assert code == 2 and "expands to more than 10,000 values" in err, err
    assert time.perf_counter() - t0 < 5 and len(err) < 400


# --- issue 15 item 6: clean terminal output ----------------------------------------------------

@pytest.mark.slow
def test_in_a_pipe_the_progress_is_lines_without_carriage_returns(tmp_path, corpus):
    r = _cli("--config", _cfg(tmp_path, corpus, tmp_path / "out"), *SMALL, "--set", "train.epochs=2",
             "--set", "train.chunk_tokens=4096")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr
    progress = [line for line in r.stderr.splitlines() if line.startswith("train ")]
    assert 5 <= len(progress) <= 21 and progress[-1].startswith("train 100%"), r.stderr


@pytest.mark.slow
def test_on_a_terminal_log_lines_are_never_glued_to_the_bar(tmp_path, corpus):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    child = _start(_cfg(tmp_path, corpus, tmp_path / "o"), "--set", "train.epochs=3", stdout=subprocess.DEVNULL,
                   stderr=follower)
    os.close(follower)
    chunks = []
    with contextlib.suppress(OSError):
        while data := os.read(leader, 65536):
            chunks.append(data)
    assert child.wait(timeout=300) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "train:" in text  # the bar was drawn
    for m in re.finditer(r"\d\d:\d\d:\d\d (INFO|WARNING) ", text):
        assert m.start() == 0 or text[m.start() - 1] in "\r\n", text[max(0, m.start() - 80):m.end() + 20]


# --- smaller ones -----------------------------------------------------------------------------

def test_fifo_and_device_as_corpus_say_what_they_are(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, fifo, tmp_path / "out"), "--quiet")
    assert code == 2 and "pipe: a named pipe (FIFO), not a regular file or folder" in err, err
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, "/dev/null", tmp_path / "out"), "--quiet")
    assert code == 2 and "/dev/null: a device, not a regular file" in err, err


def test_unusable_cache_dir_names_its_key(tmp_path, corpus, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    code, err = _in_process(capsys, "--config", _cfg(tmp_path, corpus, tmp_path / "out"), "--quiet",
                            "--set", f"corpus.cache_dir={blocker / 'cache'}")
    assert code == 2 and "(corpus.cache_dir)" in err, err


def test_rerun_over_an_interrupted_checkpoint_warns_and_keeps_it(tmp_path, corpus, capsys):
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, corpus, out)
    _interrupt_at_chunk_3(cfg)
    kept = (out / "checkpoint.pt").read_bytes()
    (tmp_path / "bad.txt").write_text("x\n")
    code, err = _in_process(capsys, "--config", cfg, *SMALL, "--set", "train.chunk_tokens=4096",
                            "--set", f"vocab.path={tmp_path / 'bad.txt'}")
    assert code == 2
    assert "holds an interrupted run (stopped at epoch 1, after chunk " in err and "--resume" in err, err
    assert (out / "checkpoint.pt").read_bytes() == kept  # not replaced by a run that wrote none


def test_lock_file_marks_and_is_reusable(tmp_path):
    with lock.output_lock(tmp_path / "o") as held:
        assert (tmp_path / "o" / lock.RUN_LOCK).read_text().strip() == str(os.getpid())
        with pytest.raises(lock.LockError, match=r"another w2v run \(pid \d+\)"):
            lock.output_lock(tmp_path / "o").acquire()
    assert held._fd is None
    lock.output_lock(tmp_path / "o").acquire().release()


def test_recover_deletes_dead_stages_and_spares_a_live_writers(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / f"{outputset.STAGE_PREFIX}{dead.stdout.strip()}-abc").mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / f"{outputset.STAGE_PREFIX}{live.pid}-def").mkdir()
        assert outputset.recover(out) is False
        assert [p.name for p in out.iterdir()] == [f"{outputset.STAGE_PREFIX}{live.pid}-def"]
    finally:
        live.kill()
        live.wait()


def test_touched_corpus_resumes_with_accept_changed_corpus_and_a_changed_one_does_not(tmp_path, corpus, capsys):
    text = tmp_path / "text.txt"
    shutil.copy(corpus, text)
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, text, out)
    _interrupt_at_chunk_3(cfg)
    os.utime(text, (time.time() + 5, time.time() + 5))  # `touch`
    args = ["--config", cfg, "--quiet", *SMALL, "--set", "train.chunk_tokens=4096", "--resume"]
    code, err = _in_process(capsys, *args)
    assert code == 2 and "corpus: the corpus files (path, size, modification time)" in err, err
    checkpoint = (out / "checkpoint.pt").read_bytes()
    text.write_text(text.read_text().replace(" the ", " a ", 1))  # now the content differs too
    code, err = _in_process(capsys, *args, "--accept-changed-corpus")
    assert code == 2 and "the corpus content differs from the checkpoint's" in err, err
    assert (out / "checkpoint.pt").read_bytes() == checkpoint
    shutil.copy(corpus, text)  # the same content again, with a new date
    code, err = _in_process(capsys, *args, "--accept-changed-corpus")
    assert code == 0, err
    assert "changed date or place but not content" in (out / "train.log").read_text()
    assert outputset.check(out) == []
