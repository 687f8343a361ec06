"""A small RePIC directory drawn with PIL: every database and query file the `repic_*` tasks read, in RePIC's layout.

RePIC's data is not shipped here (its query images are separate downloads). The fixture lets the tests, and anyone
trying the tasks, run every `repic_*` task end to end. Its concepts are coloured shapes; a query shows other views
of them (size, position) on a grey background. Its keys and names carry the cases RePIC's scoring is sensitive to:
mixed case (`<Nell>`) in the 2-concept database, a hyphenated key (`<blue-kite>`), and in the 4-concept database
keys that differ from their display names (`<tinman>` shown as `Tin Man`, `<red fox>` as `Red Fox`), as in RePIC's
own 4-concept database. Numbers from it say nothing about a model; it exists to exercise the protocol.

    python -m covip.tasks.repic.fixture DIR     # then: COVIP_DATA_REPIC=DIR lmms_eval --tasks 'repic_*' ...
"""

from __future__ import annotations

import argparse
import colorsys
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "diamond")
CONCEPT_SIZE = (96, 96)
QUERY_SIZE = (288, 192)


@dataclass(frozen=True)
class Drawn:
    key: str
    name: str
    hue: float  # 0..1
    shape: str
    category: str


def _concepts(keys_names: list[tuple[str, str]], category: str, hue_offset: float) -> list[Drawn]:
    n = len(keys_names)
    return [
        Drawn(key, name, (hue_offset + i / n) % 1.0, SHAPES[i % len(SHAPES)], category)
        for i, (key, name) in enumerate(keys_names)
    ]


SINGLE = {
    "myvlm": _concepts([("<bo>", "bo"), ("<cat-cup>", "cat-cup"), ("<mam>", "mam"), ("<oong>", "oong")], "toy", 0.0),
    "dreambooth": _concepts(
        [("<backpack>", "backpack"), ("<vase>", "vase"), ("<teapot>", "teapot"), ("<can>", "can")], "object", 0.1
    ),
    "yollava": _concepts(
        [("<blue-kite>", "blue-kite"), ("<dug>", "dug"), ("<lamb>", "lamb"), ("<ciin>", "ciin")], "toy", 0.2
    ),
}
PAIRS = _concepts([("<Nell>", "Nell"), ("<Rook>", "Rook"), ("<Baby_Q>", "Baby_Q"), ("<Zed>", "Zed")], "pet", 0.05)
GROUP = _concepts(
    [
        ("<pip>", "Pip"),
        ("<tinman>", "Tin Man"),
        ("<red fox>", "Red Fox"),
        ("<mo>", "Mo"),
        ("<dr.wren>", "Dr.Wren"),
        ("<olu>", "Olu"),
    ],
    "character",
    0.15,
)
# Query combinations, by index into the database: (concepts drawn, combinations asked about)
PAIR_QUERIES = [((0, 1), [(0, 1)]), ((2, 3), [(2, 3)]), ((1, 2), [(1, 2)]), ((3, 0), [(3, 0)])]
GROUP_QUERIES = [((0, 1, 2, 3), [(0, 1, 2, 3)]), ((1, 2, 3, 4, 5), [(1, 2, 4, 5), (1, 3, 4, 5)])]


def _colour(hue: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
    return round(r * 255), round(g * 255), round(b * 255)


def draw(concept: Drawn, canvas: ImageDraw.ImageDraw, box: tuple[int, int, int, int]) -> None:
    """The concept's shape in its colour, with a darker band of the same hue, inside `box`."""
    x0, y0, x1, y1 = box
    fill, band = _colour(concept.hue, 0.92), _colour(concept.hue, 0.55)
    if concept.shape == "circle":
        canvas.ellipse(box, fill=fill)
    elif concept.shape == "square":
        canvas.rectangle(box, fill=fill)
    elif concept.shape == "triangle":
        canvas.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        canvas.polygon([((x0 + x1) // 2, y0), (x1, (y0 + y1) // 2), ((x0 + x1) // 2, y1), (x0, (y0 + y1) // 2)], fill)
    height = y1 - y0
    canvas.rectangle((x0 + (x1 - x0) // 3, y0 + height // 2, x1 - (x1 - x0) // 3, y0 + 2 * height // 3), fill=band)


def concept_image(concept: Drawn) -> Image.Image:
    image = Image.new("RGB", CONCEPT_SIZE, (240, 240, 240))
    draw(concept, ImageDraw.Draw(image), (12, 12, CONCEPT_SIZE[0] - 12, CONCEPT_SIZE[1] - 12))
    return image


def query_image(concepts: list[Drawn]) -> Image.Image:
    """The concepts side by side (one row of up to 2, or a 2 x 2 block and more), smaller, on a cluttered grey."""
    width, height = QUERY_SIZE
    image = Image.new("RGB", QUERY_SIZE, (190, 190, 190))
    canvas = ImageDraw.Draw(image)
    for x in range(0, width, 24):
        canvas.line((x, 0, x + 40, height), fill=(150, 150, 150), width=2)
    columns = 1 if len(concepts) == 1 else 2 if len(concepts) <= 4 else 3
    rows = -(-len(concepts) // columns)
    cell_w, cell_h = width // columns, height // rows
    for i, concept in enumerate(concepts):
        col, row = i % columns, i // columns
        margin = min(cell_w, cell_h) // 6
        x0, y0 = col * cell_w + margin, row * cell_h + margin
        side = min(cell_w, cell_h) - 2 * margin
        draw(concept, canvas, (x0, y0, x0 + side, y0 + side))
    return image


def _write_database(root: Path, folder: str, concepts: list[Drawn]) -> None:
    directory = root / "data" / "database_tot" / folder
    directory.mkdir(parents=True, exist_ok=True)
    entries, paths = {}, {}
    for concept in concepts:
        path = f"./data/database_tot/{folder}/{concept.name.replace(' ', '_')}.png"
        concept_image(concept).save(root / path)
        colour = "warm" if concept.hue < 0.5 else "cool"
        entries[concept.key] = {
            "name": concept.name,
            "image": path,
            "info": f"A {colour}-coloured {concept.shape} {concept.category} with a dark band.",
            "category": concept.category,
        }
        paths[path] = concept.key
    mod = {"concept_dict": entries, "path_to_concept": paths}
    (directory / "database_mod.json").write_text(json.dumps(mod, indent=4), encoding="utf-8")


def _write_queries(root: Path, name: str, queries: dict[str, list[list[str]]], single: bool) -> None:
    directory = root / "data" / "query_tot"
    directory.mkdir(parents=True, exist_ok=True)
    body = {image: combos[0] if single else combos for image, combos in queries.items()}
    (directory / name).write_text(json.dumps(body, indent=4), encoding="utf-8")


def write_fixture(root: Path) -> Path:
    """Write every database, query file and image under `root` (a RePIC directory); returns `root`."""
    for dataset, concepts in SINGLE.items():
        _write_database(root, f"database_{dataset}", concepts)
        queries = {}
        for concept in concepts:
            path = f"./data/{dataset}_data/{concept.name}/0.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            query_image([concept]).save(root / path)
            queries[path] = [[concept.key]]
        _write_queries(root, f"{dataset}_query_templates.json", queries, single=True)
    for folder, query_file, image_dir, concepts, specs, single in (
        ("database_2_concepts", "2_concept_query_templates.json", "query-image-2-concepts", PAIRS, PAIR_QUERIES, True),
        (
            "database_4_concepts",
            "4_concept_query_templates.json",
            "query-image-4-concepts",
            GROUP,
            GROUP_QUERIES,
            False,
        ),
    ):
        _write_database(root, folder, concepts)
        queries = {}
        for n, (drawn, combos) in enumerate(specs):
            path = f"./data/{image_dir}/group photo_{n}.png"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            query_image([concepts[i] for i in drawn]).save(root / path)
            queries[path] = [[concepts[i].key for i in combo] for combo in combos]
        _write_queries(root, query_file, queries, single)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m covip.tasks.repic.fixture",
        description="Write a small drawn RePIC directory (databases, query files, images) for the repic_* tasks.",
    )
    parser.add_argument("out", type=Path, help="directory to write (use it as COVIP_DATA_REPIC)")
    args = parser.parse_args(argv)
    print(write_fixture(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
