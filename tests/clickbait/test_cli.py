import json

import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import numpy as np

    from intentrank.clickbait import ClickbaitScorer
    from intentrank.clickbait.backends.lexical import LexicalBackend
    from intentrank.clickbait.hashing import HashSpec

    titles = ["you won't believe this trick", "senate passes budget bill"] * 10
    sc = ClickbaitScorer(LexicalBackend(0.1, HashSpec(char_bits=12, word_bits=12)))
    sc.fit(titles, np.array([0.9, 0.1] * 10))
    return sc.save(tmp_path_factory.mktemp("m") / "model")


def test_score_file_one_json_per_line(tmp_path, model_dir):
    f = tmp_path / "t.txt"
    f.write_text("You Won't Believe This Trick\n\n   \nSenate passes budget bill\n", encoding="utf-8")
    res = runner.invoke(app, ["clickbait", "score", str(f), "--model", str(model_dir)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["title"] for r in rows] == [
        "You Won't Believe This Trick",
        "",
        "   ",
        "Senate passes budget bill",
    ]
    assert rows[1]["score"] == 0.0 and rows[1]["category"] == "non"
    assert rows[0]["score"] > rows[3]["score"]


def test_score_stdin_and_empty_file(tmp_path, model_dir):
    res = runner.invoke(app, ["clickbait", "score", "-", "-m", str(model_dir)], input="a title\n")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    res = runner.invoke(app, ["clickbait", "score", str(empty), "-m", str(model_dir)])
    assert res.exit_code == 0 and res.stdout == ""


def test_score_invalid_utf8_and_missing_file(tmp_path, model_dir):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\ncaf\xe9 au lait\n")
    res = runner.invoke(app, ["clickbait", "score", str(bad), "-m", str(model_dir)])
    assert res.exit_code == 2
    assert "bad.txt:2: invalid UTF-8" in res.stderr
    res = runner.invoke(app, ["clickbait", "score", str(tmp_path / "nope.txt")])
    assert res.exit_code == 2 and "input file not found" in res.stderr
