"""Atomic writes and JSON-lines reading (files.py): complete under the name, or absent; errors named."""

import pytest

from reweightlab.files import atomic_file, atomic_folder, json_lines, write_text_atomic


def test_atomic_file_replaces_only_on_a_clean_exit(tmp_path):
    path = tmp_path / "sub" / "out.json"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["out.json"]
    with atomic_file(path) as tmp:
        tmp.write_text("new")
        assert path.read_text() == "old"  # not visible before the rename
    assert path.read_text() == "new" and sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_atomic_folder_keeps_the_old_copy_until_the_new_one_is_complete(tmp_path):
    dest = tmp_path / "final"
    with atomic_folder(dest) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(KeyboardInterrupt), atomic_folder(dest) as tmp:
        (tmp / "a").write_text("2")
        raise KeyboardInterrupt
    assert (dest / "a").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["final"]
    with atomic_folder(dest) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in dest.iterdir()) == ["b"] and [p.name for p in tmp_path.iterdir()] == ["final"]


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1}\n\n{"a": 2\n', "line 3: not valid JSON"),
    ('{"a": 1}\n[1, 2]\n', "line 2: expected a JSON object, got list"),
])
def test_json_lines_names_the_bad_line(tmp_path, text, message):
    path = tmp_path / "rows.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        list(json_lines(path, lambda n, what: ValueError(f"line {n}: {what}")))


def test_json_lines_skips_blank_lines_and_keeps_numbers(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n')
    assert list(json_lines(path, ValueError)) == [(1, {"a": 1}), (4, {"a": 2})]
