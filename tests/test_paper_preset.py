"""The `paper` preset through the real `lmms_eval` command: the reference's decoding per task, its instruction text
from a file, and the run's record of both."""

from __future__ import annotations

import pytest
from lmms_runner import run_lmms_eval

pytestmark = pytest.mark.integration


def test_paper_preset_decoding_and_instruction_reach_the_run(small_benchmark, tmp_path):
    instruction = tmp_path / "prompt_captioning.txt"
    instruction.write_text("Describe the new image using the dialogues as memory.", encoding="utf-8")
    run = run_lmms_eval(
        ["--model", "covip_oracle", "--tasks", "covip_caption_1c,covip_lsd_cag"],
        small_benchmark,
        tmp_path / "out",
        COVIP_PRESET="paper",
        COVIP_CAPTION_INSTRUCTION=str(instruction),
    )
    assert run.code == 0, run.output[-3000:]
    configs = run.results["configs"]
    caption = configs["covip_caption_1c"]["generation_kwargs"]
    assert caption["max_new_tokens"] == 1024 and caption["temperature"] == 0 and caption["do_sample"] is False
    diagnostic = configs["covip_lsd_cag"]["generation_kwargs"]
    expected = {"max_new_tokens": 1024, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "presence_penalty": 1.5}
    assert {k: diagnostic[k] for k in expected} == expected and diagnostic["do_sample"] is True
    for task in ("covip_caption_1c", "covip_lsd_cag"):
        identity = configs[task]["metadata"]["covip"]
        assert identity["preset"] == "paper"
        assert identity["caption_instruction"]["source"] == "file"
        assert identity["caption_instruction"]["path"] == str(instruction)


def test_default_preset_keeps_the_yaml_decoding(small_benchmark, tmp_path):
    run = run_lmms_eval(["--model", "covip_blind", "--tasks", "covip_caption_1c,covip_lsd"], small_benchmark, tmp_path)
    assert run.code == 0, run.output[-3000:]
    for task, config in run.results["configs"].items():
        assert config["generation_kwargs"]["max_new_tokens"] == 512 and config["generation_kwargs"]["temperature"] == 0
        assert config["metadata"]["covip"]["caption_instruction"] == {"source": "covip"}, task
