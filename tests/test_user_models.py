"""User models: a per-user folder (or NAPARI_MSCGM_MODELS) beside the bundled models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from napari_mscgm import WeightsError, list_models, load_model, restore, save_model
from napari_mscgm.cli import main
from napari_mscgm.model_io import catalog as catalog_module
from napari_mscgm.model_io.bundled import bundled_names, model_path
from napari_mscgm.model_io.catalog import catalog, user_models_dir


def test_the_folder_comes_from_platformdirs_unless_the_variable_names_one(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_MSCGM_MODELS", str(tmp_path / "mine"))
    assert user_models_dir() == tmp_path / "mine"
    monkeypatch.delenv("NAPARI_MSCGM_MODELS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_models_dir() == tmp_path / "data" / "napari-mscgm" / "models"


def test_a_user_model_is_listed_loaded_and_used_by_its_file_stem(user_models, tiny_model, rng):
    save_model(tiny_model, user_models / "my-scope.safetensors")
    assert list_models() == [*bundled_names(), "my-scope"]
    model = load_model("my-scope", device="cpu")
    assert model.config.name == tiny_model.config.name
    image = rng.random((16, 16)).astype(np.float32)
    expected = restore(image, tiny_model, seed=1, axes="YX", consistency=False)
    np.testing.assert_array_equal(
        restore(image, "my-scope", seed=1, axes="YX", consistency=False), expected
    )


def test_bad_files_are_reported_one_line_each_and_never_break_the_listing(
    user_models, tiny_model, capsys
):
    save_model(tiny_model, user_models / "good.safetensors")
    (user_models / "broken.safetensors").write_bytes(b"not a safetensors file at all")
    (user_models / "old.pth").write_bytes(b"\x80\x04pickle")
    (user_models / "notes.md").write_text("a card")
    names = bundled_names()
    if names:  # a user file with a bundled model's name is refused, not shadowing it
        shutil.copy(model_path(names[0]), user_models / f"{names[0]}.safetensors")
    entries, problems = catalog()
    assert [n for n, e in entries.items() if not e.bundled] == ["good"]
    assert all(e.bundled for n, e in entries.items() if n in names)
    assert any("broken.safetensors" in p for p in problems)
    assert any("old.pth" in p and "pickle" in p for p in problems)
    assert not any("notes.md" in p for p in problems)
    if names:
        assert any("name of the bundled model" in p for p in problems)
    assert all("\n" not in p for p in problems)

    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "good" in out and "user" in out and str(user_models) in out
    assert len([line for line in err.splitlines() if "warning" in line]) == len(problems)
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["source"] for r in rows}["good"] == "user"

    # asking for a refused file by name says why, in one line
    with pytest.raises(WeightsError, match=r"broken\.safetensors") as info:
        load_model("broken")
    assert "\n" not in str(info.value)
    with pytest.raises(WeightsError, match="no such model"):
        load_model("nothing-by-this-name")


def test_a_missing_or_unlistable_folder_is_no_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_MSCGM_MODELS", str(tmp_path / "absent"))
    entries, problems = catalog()
    assert list(entries) == bundled_names() and problems == []
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("NAPARI_MSCGM_MODELS", str(tmp_path / "file"))
    entries, problems = catalog()
    assert list(entries) == bundled_names() and "not a folder" in problems[0]


def test_the_cli_restores_with_a_user_model(user_models, tiny_model, tmp_path, rng):
    from napari_mscgm.io import read_image, write_ome_tiff

    save_model(tiny_model, user_models / "my-scope.safetensors")
    source = tmp_path / "in.ome.tif"
    write_ome_tiff(source, (rng.random((16, 16)) * 1000).astype(np.uint16), axes="YX",
                   pixel_size_um=(None, 0.65, 0.65))  # fmt: skip
    out = tmp_path / "out.ome.tif"
    assert main(["restore", str(source), "--model", "my-scope", "-o", str(out)]) == 0
    assert read_image(out).data.shape[-2:] == (32, 32)
    assert catalog_module.MODELS_ENV == "NAPARI_MSCGM_MODELS"
