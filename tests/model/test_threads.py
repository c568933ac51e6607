"""torch_threads pins and restores torch's thread count; the train command and the text encoder leave it as found."""

from __future__ import annotations

import shutil

import pytest
import torch

from fashion_meta.model.threads import torch_threads

from .conftest import RUN_DATE


def test_torch_threads_pins_the_count_and_restores_it_even_on_error():
    torch.set_num_threads(2)  # a known count other than the pinned one, so a missing restore shows
    with pytest.raises(RuntimeError, match="boom"), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with torch_threads(None):
        assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="threads must be >= 1"), torch_threads(0):
        pass
    assert torch.get_num_threads() == 2


def test_train_command_trains_on_its_thread_count_and_restores_the_callers(task_folder, tmp_path, capsys,
                                                                          monkeypatch):
    """The nightly runs train then recommend in one process; a count left behind changed recommend's last bits."""
    pytest.importorskip("pyspark", reason="the command's run log needs pyspark (a GPU box may have no Spark)")
    from fashion_meta.cli import main
    from fashion_meta.model import train as train_module

    seen = []
    real_train = train_module.train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(train_module, "train", spy)
    lake = tmp_path / "lake"
    shutil.copytree(task_folder, lake / "task_files" / f"run_date={RUN_DATE}")
    torch.set_num_threads(2)  # the default [train] threads is 1
    code = main(["train", "--run-date", RUN_DATE.isoformat(), "--lake", str(lake), "--epochs", "1", "--no-progress",
                 "--force-promote"])
    assert code == 0, capsys.readouterr().err
    assert seen == [1] and torch.get_num_threads() == 2


@pytest.mark.parametrize("setting, message", [
    ('meta_init = "warm"', "init must be one of random, pretrained"),
    # validate_launches reaches MetaConfig, which refuses it without launch episodes
    ("cold_fraction = 0.0\nvalidate_launches = true", "validate_launches needs launch episodes"),
    ("softmax_weight = -0.5", "softmax_weight must be a finite number >= 0"),
])
def test_train_command_refuses_a_bad_meta_setting_in_one_line(task_folder, tmp_path, capsys, setting, message):
    pytest.importorskip("pyspark", reason="the command's run log needs pyspark (a GPU box may have no Spark)")
    from fashion_meta.cli import main

    lake = tmp_path / "lake"
    shutil.copytree(task_folder, lake / "task_files" / f"run_date={RUN_DATE}")
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[train]\n{setting}\n")
    code = main(["train", "--run-date", RUN_DATE.isoformat(), "--lake", str(lake), "--config", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
