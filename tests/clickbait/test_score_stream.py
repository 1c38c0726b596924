"""`intentrank clickbait score` as a stream: output as it reads, bounded chunks, and one-line errors (or a
quiet exit for a closed pipe) for every careless way of wiring its input and output. Subprocess tests run
the real command with the lexical model (conftest)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intentrank.cli.clickbait import MAX_LINE_BYTES, TitleReader
from intentrank.cli.common import EXIT_BROKEN_PIPE
from intentrank.errors import IntentRankError

CMD = [sys.executable, "-m", "intentrank.cli.main", "clickbait", "score"]


def _run(args: list[str], model: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, *args, "-m", str(model)], capture_output=True, timeout=120, **kw)


def _sh(script: str, model: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with $SCORE = the score command (for <&-, >&-, <(...))."""
    score = " ".join([*map(_q, CMD), "-m", _q(str(model))])
    return subprocess.run(["bash", "-c", script.replace("$SCORE", score)], capture_output=True, timeout=120)


def _q(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def _one_error_line(res: subprocess.CompletedProcess, *needles: str) -> None:
    err = res.stderr.decode()
    assert res.returncode == 2, (res.returncode, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


# --- the reader ------------------------------------------------------------------------------------------


class _Endless(io.RawIOBase):
    """An input that never ends (like `yes`), counting what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        line = b"ten tricks doctors hate\n" * (len(b) // 24)
        b[: len(line)] = line
        self.read_bytes += len(line)
        return len(line)


def test_reader_yields_bounded_chunks_of_an_endless_input() -> None:
    raw = _Endless()
    reader = TitleReader(io.BufferedReader(raw), "<endless>", max_lines=512)
    sizes = []
    for chunk in reader:
        sizes.append(len(chunk))
        if len(sizes) == 14:
            break
    assert sizes[:4] == [1, 2, 4, 8] and max(sizes) == 512 and sizes[-1] == 512
    assert raw.read_bytes < 10 * 512 * 24 + 64 * 1024  # read about what was yielded, not ahead


def test_reader_bytes_cap_and_long_lines() -> None:
    long = b"x" * (3 * MAX_LINE_BYTES) + "é".encode() * 10
    data = b"a\r\n" + long + b"\n\xc3\n" + "é".encode() * (MAX_LINE_BYTES // 2 + 1) + b"\nlast"
    reader = TitleReader(io.BytesIO(data), "t", replace=True, max_bytes=MAX_LINE_BYTES)
    chunks = list(reader)
    titles = [t for c in chunks for t in c]
    assert len(titles) == 5 and titles[0] == "a" and titles[-1] == "last"
    assert titles[1] == "x" * MAX_LINE_BYTES and titles[2] == "\ufffd"
    assert titles[3] == "é" * (MAX_LINE_BYTES // 2)  # cut between characters, not inside one
    assert reader.cut == [2, 4] and reader.replaced == [3] and reader.lines == 5
    assert reader.bytes == len(data)
    assert "cut" in " ".join(reader.notes()) and "U+FFFD in 1 line(s): 3" in " ".join(reader.notes())


def test_reader_invalid_utf8_names_the_line() -> None:
    with pytest.raises(IntentRankError, match=r"^in.txt:3: invalid UTF-8 \(.* at byte 3\)"):
        [t for c in TitleReader(io.BytesIO(b"ok\nfine\ncaf\xe9\nmore\n"), "in.txt") for t in c]


lines_st = st.lists(
    st.one_of(
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
        st.text(max_size=40).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass")),
        st.sampled_from([
            b"", b"\r", b"\x00", b"a\rb", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xef\xbb\xbf"]
        ),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(lines=lines_st, final_newline=st.booleans(), replace=st.booleans())
def test_fuzz_reader_one_title_per_line_or_a_named_error(
    lines: list[bytes], final_newline: bool, replace: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expect = data.split(b"\n")
    if expect[-1] == b"":
        expect.pop()
    reader = TitleReader(io.BytesIO(data), "f", replace=replace, max_lines=4)
    try:
        titles = [t for c in reader for t in c]
    except IntentRankError as err:
        bad = next(i for i, b in enumerate(expect, 1) if not _utf8(b))
        assert not replace and str(err).startswith(f"f:{bad}: invalid UTF-8")
        return
    assert titles == [b.decode("utf-8", "replace").rstrip("\r") for b in expect]
    assert reader.replaced == [i for i, b in enumerate(expect, 1) if not _utf8(b)]


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=lines_st)
def test_fuzz_cli_one_json_line_per_input_line(lines: list[bytes], lexical_model: Path) -> None:
    """Through the command (in-process): no input gives a traceback; each line gives one JSON line."""
    from typer.testing import CliRunner

    from intentrank.cli.main import app

    data = b"\n".join(lines)
    res = CliRunner().invoke(app, ["clickbait", "score", "-", "-m", str(lexical_model), "--replace-invalid"],
                             input=data)  # fmt: skip
    assert res.exit_code == 0 and res.exception is None, res.output
    rows = [json.loads(x) for x in res.stdout_bytes.decode("utf-8").split("\n")[:-1]]
    expect = data.split(b"\n")
    if expect[-1] == b"":
        expect.pop()
    assert len(rows) == len(expect)
    assert all(0 <= r["score"] <= 1 and r["category"] in ("non", "light", "heavy") for r in rows)
    assert [r["title"] for r in rows] == [b.decode("utf-8", "replace").rstrip("\r") for b in expect]


# --- the command -----------------------------------------------------------------------------------------


def test_first_result_comes_before_the_input_ends(lexical_model: Path) -> None:
    p = subprocess.Popen([*CMD, "-", "-m", str(lexical_model)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip
    try:
        p.stdin.write(b"You won't believe this trick\n")
        p.stdin.flush()
        first = json.loads(p.stdout.readline())  # stdin still open: a batch reader would block here
        assert first["title"] == "You won't believe this trick"
        p.stdin.write(b"second\nthird\n")
        p.stdin.close()
        rest = p.stdout.read().decode().splitlines()
        assert [json.loads(r)["title"] for r in rest] == ["second", "third"]
        assert p.wait(timeout=60) == 0
    finally:
        p.kill()
        p.wait()


def test_closed_pipe_downstream_ends_quietly_and_fast(lexical_model: Path) -> None:
    """`yes title | intentrank clickbait score - | head -1`: exits 141 (SIGPIPE convention), no message."""
    p = subprocess.Popen([*CMD, "-", "-m", str(lexical_model)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip

    def feed() -> None:
        try:
            while True:
                p.stdin.write(b"ten tricks doctors hate\n" * 1000)
        except (BrokenPipeError, ValueError, OSError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    assert json.loads(p.stdout.readline())["title"] == "ten tricks doctors hate"
    p.stdout.close()
    t0 = time.monotonic()
    rc = p.wait(timeout=60)
    assert rc == EXIT_BROKEN_PIPE and time.monotonic() - t0 < 30
    assert p.stderr.read() == b""


def test_closed_stdin_and_stdout(lexical_model: Path) -> None:
    _one_error_line(_sh("$SCORE - <&-", lexical_model), "stdin is closed")
    _one_error_line(_sh("echo title | $SCORE - >&-", lexical_model), "stdout is closed")


def test_full_disk_on_stdout(lexical_model: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    _one_error_line(_sh("echo title | $SCORE - > /dev/full", lexical_model), "No space left on device")


def test_directory_and_missing_input(lexical_model: Path, tmp_path: Path) -> None:
    _one_error_line(_run([str(tmp_path)], lexical_model), f"input {tmp_path} is a directory")
    _one_error_line(_run([str(tmp_path / "nope.txt")], lexical_model), "input file not found")


def test_fifo_and_process_substitution_are_streams(lexical_model: Path, tmp_path: Path) -> None:
    res = _sh("$SCORE <(printf 'one\\ntwo\\n')", lexical_model)
    assert res.returncode == 0, res.stderr
    assert [json.loads(x)["title"] for x in res.stdout.decode().splitlines()] == ["one", "two"]
    fifo = tmp_path / "titles.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(b"alpha\nbeta\ngamma\n")

    threading.Thread(target=write, daemon=True).start()
    res = _run([str(fifo)], lexical_model)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.decode().splitlines()) == 3


def test_invalid_utf8_strict_then_replaced(lexical_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\ncaf\xe9 au lait\nafter\n")
    res = _run([str(bad)], lexical_model)
    _one_error_line(res, "bad.txt:3: invalid UTF-8", "--replace-invalid")
    assert len(res.stdout.decode().splitlines()) == 2  # the lines before it were written
    res = _run([str(bad), "--replace-invalid"], lexical_model)
    rows = [json.loads(x) for x in res.stdout.decode().splitlines()]
    assert res.returncode == 0 and [r["title"] for r in rows][2] == "caf\ufffd au lait" and len(rows) == 4
    assert "warning:" in res.stderr.decode() and "line(s): 3" in res.stderr.decode()


def test_train_out_refuses_a_file_before_training(tmp_path: Path) -> None:
    f = tmp_path / "model"
    f.write_text("precious")
    res = subprocess.run([sys.executable, "-m", "intentrank.cli.main", "clickbait", "train", "--backend",
                          "lexical", "--out", str(f)], capture_output=True, timeout=60)  # fmt: skip
    _one_error_line(res, "exists and is not a directory")
    assert f.read_text() == "precious"


def test_progress_bar_on_a_terminal_stderr(lexical_model: Path) -> None:
    """A bar appears on stderr when it is a terminal and the run takes over 2 s (none in the pipes above)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 0-column tty shows nothing
    p = subprocess.Popen([*CMD, "-", "-m", str(lexical_model)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=slave)  # fmt: skip
    os.close(slave)
    try:
        p.stdin.write(b"first\n")
        p.stdin.flush()
        p.stdout.readline()
        time.sleep(2.5)
        p.stdin.write(b"second\nthird\n")
        p.stdin.close()
        assert len(p.stdout.read().splitlines()) == 2 and p.wait(timeout=60) == 0
        err = b""
        while True:
            try:
                part = os.read(master, 4096)
            except OSError:
                break
            if not part:
                break
            err += part
    finally:
        p.kill()
        p.wait()
        os.close(master)
    assert b"scoring" in err and b"titles=3" in err, err


def test_ctrl_c_ends_with_one_word(lexical_model: Path, tmp_path: Path) -> None:
    import signal

    big = tmp_path / "big.txt"
    big.write_bytes(b"ten tricks doctors hate\n" * 200_000)
    # a shell's background job (`make test &`, nohup in a script) starts with SIGINT ignored, and Python
    # installs no KeyboardInterrupt handler then: give the child the default disposition, as a terminal would
    p = subprocess.Popen([*CMD, str(big), "-m", str(lexical_model)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    p.stdout.readline()  # the command is running (past imports and model load)
    p.send_signal(signal.SIGINT)
    p.stdout.read()
    assert p.wait(timeout=60) == 130 and p.stderr.read() == b"interrupted\n"
