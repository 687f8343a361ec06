"""The interleaved prompt follows the paper's layout exactly, for every control."""

from PIL import Image

from covip.tasks.data.sources import load_caption_source
from covip.tasks.lmms.caption import caption_doc_to_messages, doc_row
from covip.tasks.prompts import CAPTION_INSTRUCTION, QUERY_HEADER, parse_user_turn


def first_doc(root, bucket=2, control="none"):
    source = load_caption_source(str(root))
    sample = next(s for s in source.samples if s.bucket == bucket)
    return doc_row(source, sample, control)


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


def test_zero_based_headers_on_request(small_benchmark):
    content = caption_doc_to_messages(first_doc(small_benchmark), {"index_base": 0})[0]["content"]
    assert content[0]["text"] == "===== Dialogue 0 ====="


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
