import gzip
import json

import pytest

from intentrank.data.stop_clickbait import load_stop_clickbait
from intentrank.data.webis import load_webis17
from intentrank.errors import DataError


def test_shipped_webis_loads_typed_and_in_range():
    df = load_webis17()
    assert len(df) == 15567
    assert df["truth_mean"].between(0, 1).all()
    assert set(df["click_bait"].unique()) == {0, 1}
    assert str(df["click_bait"].dtype) == "int8"


def test_shipped_stop_clickbait_loads_both_classes():
    df = load_stop_clickbait()
    assert len(df) == 32000
    assert df["label"].value_counts().to_dict() == {0: 16001, 1: 15999}
    assert (df["title"].str.len() > 0).all()


ROW = {"text_id": 1, "post_text": "a title", "truth_mean": 0.5, "truth_median": 0.5, "truth_mode": 0.5,
       "click_bait": 1}  # fmt: skip


def _webis(tmp_path, lines, gz=True):
    data = "\n".join(lines).encode("utf-8") if all(isinstance(x, str) for x in lines) else b"\n".join(lines)
    p = tmp_path / ("w.jsonl.gz" if gz else "w.jsonl")
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({**ROW, "truth_mean": 1.5}, r"w.jsonl.gz:2: truth_mean must be a number in \[0, 1\]"),
        ({k: v for k, v in ROW.items() if k != "post_text"}, "w.jsonl.gz:2: missing field.*post_text"),
        ({**ROW, "click_bait": 2}, "click_bait must be 0 or 1"),
        ({**ROW, "post_text": None}, "post_text must be a string"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_webis_malformed_rows_name_file_and_line(tmp_path, row, match):
    p = _webis(tmp_path, [json.dumps({**ROW, "text_id": 0}), json.dumps(row)])
    with pytest.raises(DataError, match=match):
        load_webis17(p)


def test_webis_bad_json_empty_duplicate_and_not_gzip(tmp_path):
    with pytest.raises(DataError, match=r":1: not valid JSON"):
        load_webis17(_webis(tmp_path, ["{oops"]))
    with pytest.raises(DataError, match="no rows"):
        load_webis17(_webis(tmp_path, [""]))
    with pytest.raises(DataError, match="text_id 1 appears more than once"):
        load_webis17(_webis(tmp_path, [json.dumps(ROW), json.dumps(ROW)]))
    bad = tmp_path / "x.jsonl.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_webis17(bad)
    with pytest.raises(DataError, match="not found"):
        load_webis17(tmp_path / "missing.jsonl.gz")


def test_webis_invalid_utf8_names_line(tmp_path):
    p = _webis(tmp_path, [json.dumps(ROW).encode(), b'{"post_text": "caf\xe9"}'])
    with pytest.raises(DataError, match=r"w.jsonl.gz:2: invalid UTF-8"):
        load_webis17(p)


def _stop(tmp_path, cb: bytes, non: bytes):
    (tmp_path / "clickbait_data.gz").write_bytes(gzip.compress(cb))
    (tmp_path / "non_clickbait_data.gz").write_bytes(gzip.compress(non))
    return tmp_path


def test_stop_clickbait_small_file_and_errors(tmp_path):
    df = load_stop_clickbait(_stop(tmp_path, b"A\n\nB\n", b"C\n"))
    assert df["title"].tolist() == ["A", "B", "C"]
    assert df["label"].tolist() == [1, 1, 0]
    with pytest.raises(DataError, match=r"non_clickbait_data\.gz: no headlines"):
        load_stop_clickbait(_stop(tmp_path, b"A\n", b"\n\n"))
    with pytest.raises(DataError, match=r"clickbait_data.gz:2: invalid UTF-8"):
        load_stop_clickbait(_stop(tmp_path, b"A\n\xff\xfe\n", b"C\n"))
    with pytest.raises(DataError, match="not found"):
        load_stop_clickbait(tmp_path / "nowhere")
