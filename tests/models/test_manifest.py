"""Model folder manifests: written last, verified on use, verification remembered by stat."""

from __future__ import annotations

import json
import os

import pytest

from relforge.errors import ModelError
from relforge.models import MANIFEST, _manifest, read_manifest, verify_folder, write_manifest


@pytest.fixture
def folder(tmp_path):
    f = tmp_path / "model"
    (f / "sub").mkdir(parents=True)
    (f / "weights.bin").write_bytes(os.urandom(4096))
    (f / "config.json").write_text('{"a": 1}')
    (f / "sub" / "vocab.txt").write_text("a\nb\n")
    write_manifest(f, "test-model", {"kind": "test"}, build={"dtype": "float32"})
    return f


@pytest.fixture
def hash_calls(monkeypatch):
    calls = []
    real = _manifest.sha256_file

    def counting(path):
        calls.append(path.name)
        return real(path)

    monkeypatch.setattr(_manifest, "sha256_file", counting)
    return calls


def test_manifest_lists_every_file_with_its_hash(folder):
    manifest = read_manifest(folder)
    assert [f["path"] for f in manifest["files"]] == ["config.json", "sub/vocab.txt", "weights.bin"]
    assert manifest["bytes"] == sum(f["bytes"] for f in manifest["files"])
    assert manifest["name"] == "test-model" and manifest["build"] == {"dtype": "float32"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])


def test_verification_is_remembered_until_a_file_changes(folder, tmp_path, hash_calls):
    cache = tmp_path / "cache"
    verify_folder(folder, cache)
    assert sorted(hash_calls) == sorted([MANIFEST, "config.json", "vocab.txt", "weights.bin"])
    hash_calls.clear()
    verify_folder(folder, cache)
    assert hash_calls == [MANIFEST]  # only stat for the model files
    hash_calls.clear()
    (folder / "config.json").write_text('{"a": 2}')  # same size, new content
    with pytest.raises(ModelError, match="config.json: corrupt model file"):
        verify_folder(folder, cache)
    assert "config.json" in hash_calls


def test_same_size_corruption_with_the_old_mtime_is_caught(folder, tmp_path):
    cache = tmp_path / "cache"
    verify_folder(folder, cache)
    path = folder / "weights.bin"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # hide the write from the mtime
    with pytest.raises(ModelError, match=r"weights\.bin: corrupt model file, its SHA-256"):
        verify_folder(folder, cache)


def test_truncated_and_missing_files_are_named(folder, tmp_path):
    cache = tmp_path / "cache"
    (folder / "weights.bin").write_bytes(b"short")
    with pytest.raises(ModelError, match=r"weights\.bin: corrupt model file, 5 bytes where the manifest says 4096"):
        verify_folder(folder, cache)
    (folder / "sub" / "vocab.txt").unlink()
    with pytest.raises(ModelError, match=r"vocab\.txt: file missing"):
        verify_folder(folder, cache)


def test_unfinished_and_unreadable_manifests(folder, tmp_path):
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model manifest"):
        verify_folder(folder, tmp_path / "cache")
    (folder / MANIFEST).write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelError, match='no "files" list'):
        verify_folder(folder, tmp_path / "cache")
    (folder / MANIFEST).unlink()
    with pytest.raises(ModelError, match="unfinished"):
        verify_folder(folder, tmp_path / "cache")


def test_an_empty_folder_cannot_get_a_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="empty"):
        write_manifest(tmp_path / "empty", "x", {})
