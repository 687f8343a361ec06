"""The interleaved prompt follows the paper's layout exactly, for every control."""

import jinja2
import pytest
from PIL import Image

from covip.tasks.data.sources import load_caption_source
from covip.tasks.lmms.caption import caption_doc_to_messages, doc_row
from covip.tasks.lmms.task import caption_instruction
from covip.tasks.prompts import CAPTION_INSTRUCTION, QUERY_HEADER, parse_user_turn


def first_doc(root, bucket=2, control="none", preset="covip", instruction=CAPTION_INSTRUCTION):
    source = load_caption_source(str(root))
    sample = next(s for s in source.samples if s.bucket == bucket)
    return doc_row(source, sample, {"control": control, "preset": preset, "instruction": instruction})


def test_layout_header_image_dialogue_per_concept_then_query(small_benchmark):
    doc = first_doc(small_benchmark)
    messages = caption_doc_to_messages(doc)
    assert [m["role"] for m in messages] == ["user"]
    content = messages[0]["content"]
    n = len(doc["concepts"])
    assert len(content) == 3 * n + 3
    for j, concept in enumerate(doc["concepts"]):
        header, image, dialogue = content[3 * j : 3 * j + 3]
        assert header == {"type": "text", "text": f"===== Dialogue {j + 1} ====="}
        assert image["type"] == "image" and isinstance(image["url"], Image.Image)
        assert dialogue == {"type": "text", "text": concept["dialogue"].rstrip() + "\n"}
    assert content[3 * n] == {"type": "text", "text": QUERY_HEADER}
    assert content[3 * n + 1]["type"] == "image"
    assert content[3 * n + 2] == {"type": "text", "text": CAPTION_INSTRUCTION}
    with Image.open(doc["query_image"]) as query:
        assert content[3 * n + 1]["url"].tobytes() == query.convert("RGB").tobytes()


# Qwen's chat-template rule for `add_vision_id=True` (written here from its public template): every image item is
# rendered as "Picture n: " + vision tokens, n counting images from 1; text items are rendered as they are.
QWEN_ITEMS = jinja2.Template(
    "{% set n = namespace(v=0) %}{% for item in content %}"
    "{% if item.type == 'image' or 'image_url' in item %}{% set n.v = n.v + 1 %}"
    "{% if add_vision_id %}Picture {{ n.v }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ item.text }}{% endif %}{% endfor %}"
)


def test_the_paper_preset_renders_exactly_as_the_reference_notebook(small_benchmark):
    """The reference's captioning notebook: 0-based headers with a line break, context images as image_url items, the
    dialogue as it is, rendered with add_vision_id=True. Ours carries the labels as text, for every model."""
    doc = first_doc(small_benchmark, preset="paper", instruction="THE REFERENCE TEXT")
    ours = caption_doc_to_messages(doc)[0]["content"]
    reference = []
    for j, concept in enumerate(doc["concepts"]):
        reference += [{"type": "text", "text": f"===== Dialogue {j} =====\n"}, {"type": "image_url", "image_url": "x"}]
        reference += [{"type": "text", "text": concept["dialogue"]}]
    reference += [{"type": "text", "text": "===== New Image =====\n"}, {"type": "image", "image": "q"}]
    reference += [{"type": "text", "text": "THE REFERENCE TEXT"}]
    rendered = QWEN_ITEMS.render(content=ours, add_vision_id=False)
    assert rendered == QWEN_ITEMS.render(content=reference, add_vision_id=True)
    assert rendered.count("Picture ") == len(doc["concepts"]) + 1
    images, dialogues, _ = parse_user_turn(caption_doc_to_messages(doc))  # the baselines read it back
    assert dialogues == [c["dialogue"] for c in doc["concepts"]] and len(images) == len(dialogues)


def test_the_instruction_file_is_used_verbatim_and_recorded(tmp_path, monkeypatch):
    path = tmp_path / "prompt_captioning.txt"
    path.write_text("You are an AI model that... (the reference's text)\n", encoding="utf-8")
    monkeypatch.setenv("COVIP_CAPTION_INSTRUCTION", str(path))
    text, source = caption_instruction()
    assert text == path.read_text(encoding="utf-8")
    assert source["source"] == "file" and source["path"] == str(path) and len(source["sha256"]) == 64
    monkeypatch.setenv("COVIP_CAPTION_INSTRUCTION", str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="missing.txt: cannot read the instruction file"):
        caption_instruction()
    monkeypatch.delenv("COVIP_CAPTION_INSTRUCTION")
    assert caption_instruction() == (CAPTION_INSTRUCTION, {"source": "covip"})


def test_blind_control_blanks_the_query_only(small_benchmark):
    content = caption_doc_to_messages(first_doc(small_benchmark, control="blind"))[0]["content"]
    query = content[-2]["url"]
    assert query.getextrema() == ((128, 128), (128, 128), (128, 128))
    assert sum(item["type"] == "image" for item in content) == 2 * 3 + 1


def test_noctx_control_removes_the_context(small_benchmark):
    content = caption_doc_to_messages(first_doc(small_benchmark, control="noctx"))[0]["content"]
    assert [item.get("text") for item in content if item["type"] == "text"] == [QUERY_HEADER, CAPTION_INSTRUCTION]


def test_parse_user_turn_inverts_the_layout(small_benchmark):
    doc = first_doc(small_benchmark, bucket=3)
    images, dialogues, query = parse_user_turn(caption_doc_to_messages(doc))
    assert len(images) == len(dialogues) == 9
    assert [d.rstrip() for d in dialogues] == [c["dialogue"].rstrip() for c in doc["concepts"]]
    assert isinstance(query, Image.Image)
