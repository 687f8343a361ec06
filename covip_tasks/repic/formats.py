"""RePIC's file formats (docs/protocol.md §7.2), read and validated; every problem names its file, entry and field.

- Concept database (`database_mod.json`): `{"concept_dict": {"<key>": {"name", "image", "info", "category"}},
  "path_to_concept": {image: "<key>"}}`. `name` is the display name the prompt shows (`Name: <Iron Man>`), the key
  is what RePIC's scoring matches (`<ironman>`). Image paths are relative to the RePIC directory (`./data/...`).
- Query file (`*_query_templates.json`): `{image: ["<key>", ...]}`, or `{image: [["<key>", ...], ...]}` when one
  image is asked about with several concept combinations (RePIC's 4-concept set).
- Caption file (what RePIC's captioning scripts write, and its scoring reads): a JSON list of rows
  `[image_path, ["<key>", ...], caption, prompt]`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from covip.tasks.data.schema import DataError, Problem

Text = Annotated[str, Field(pattern=r"^[^\n]*$")]  # one line: RePIC splits the prompt's concept lines on newlines
Line = Annotated[str, Field(min_length=1, pattern=r"^[^\n]*\S[^\n]*$")]


class Concept(BaseModel):
    """One database entry (strict: an unknown or missing field is an error naming it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: Line
    image: Line
    info: Text
    category: Text


class Database(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    concept_dict: dict[Line, Concept] = Field(min_length=1)
    path_to_concept: dict[str, str] | None = None

    def names(self) -> dict[str, str]:
        """Key -> display name."""
        return {key: concept.name for key, concept in self.concept_dict.items()}


@dataclass(frozen=True)
class CaptionRow:
    """One row of a RePIC caption file."""

    image: str
    keys: tuple[str, ...]
    caption: str
    prompt: str | None


def resolve(root: Path, path: str) -> Path:
    """A path as RePIC writes it (relative to its directory, `./data/...`), or absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else root / p


def read_json(path: Path) -> Any:
    """The file's JSON; a missing or malformed file is a DataError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError([Problem(str(path), "file", "path", "no such file")]) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError([Problem(str(path), "file", "content", f"not readable JSON: {exc}")]) from None


def image_problem(path: Path) -> str | None:
    """Why the image cannot be used (None when it opens)."""
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018 (reading the header is the check)
    except FileNotFoundError:
        return f"no such image: {path}"
    except (OSError, UnidentifiedImageError) as exc:
        return f"not an image: {path} ({exc})"
    return None


def _pydantic_problems(source: str, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc[:1] == ["concept_dict"] and len(loc) >= 2:
            problems.append(Problem(source, f"concept {loc[1]}", ".".join(loc[2:]) or "entry", error["msg"]))
        else:
            problems.append(Problem(source, "database", ".".join(loc) or "top level", error["msg"]))
    return problems


def read_database(path: Path, root: Path | None = None) -> Database:
    """A concept database, every entry validated: fields, one-line texts, `path_to_concept` (when present) mapping
    each concept's image back to its key, and, given the RePIC directory `root`, images that open under it."""
    source = str(path)
    try:
        database = Database.model_validate(read_json(path))
    except ValidationError as exc:
        raise DataError(_pydantic_problems(source, exc)) from None
    problems = []
    for key, concept in database.concept_dict.items() if root is not None else ():
        bad = image_problem(resolve(root, concept.image))
        if bad:
            problems.append(Problem(source, f"concept {key}", "image", bad))
    if database.path_to_concept is not None:
        for key, concept in database.concept_dict.items():
            mapped = database.path_to_concept.get(concept.image)
            if mapped != key:
                problems.append(
                    Problem(source, f"concept {key}", "image", f"path_to_concept maps {concept.image!r} to {mapped!r}")
                )
        for image, key in database.path_to_concept.items():
            if key not in database.concept_dict:
                problems.append(Problem(source, f"path_to_concept {image}", "concept", f"unknown concept {key!r}"))
    if problems:
        raise DataError(problems)
    return database


def _key_problems(source: str, entry: str, keys: Any, bucket: int, known: Mapping[str, Any] | None) -> list[Problem]:
    """A combination of keys: a list of `bucket` distinct strings, each known to the database when one is given."""
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        return [Problem(source, entry, "concepts", f"must be a list of concept keys, got {keys!r:.200}")]
    problems = []
    if len(keys) != bucket:
        problems.append(Problem(source, entry, "concepts", f"a {bucket}-concept sample needs {bucket} keys: {keys}"))
    if len(set(keys)) != len(keys):
        problems.append(Problem(source, entry, "concepts", f"a key repeats: {keys}"))
    for key in keys if known is not None else []:
        if key not in known:
            problems.append(Problem(source, entry, "concepts", f"{key!r} is not in the concept database"))
    return problems


def read_queries(path: Path, root: Path, bucket: int, database: Database) -> list[tuple[str, tuple[str, ...]]]:
    """The (query image, ground-truth keys) samples of a query file, in its order; images must open under `root`."""
    source, data = str(path), read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError([Problem(source, "file", "top level", "must be a non-empty object {image: [keys]}")])
    samples, problems = [], []
    for image, value in data.items():
        entry = f"image {image}"
        combos = value if isinstance(value, list) and value and all(isinstance(v, list) for v in value) else [value]
        for n, keys in enumerate(combos):
            where = entry if len(combos) == 1 else f"{entry} combination {n}"
            found = _key_problems(source, where, keys, bucket, database.concept_dict)
            problems += found
            if not found:
                samples.append((image, tuple(keys)))
        bad = image_problem(resolve(root, image))
        if bad:
            problems.append(Problem(source, entry, "image", bad))
    if problems:
        raise DataError(problems)
    return samples


def read_caption_file(path: Path, bucket: int, known: Mapping[str, Any] | None = None) -> list[CaptionRow]:
    """A RePIC caption file: rows `[image_path, [keys], caption]` plus an optional prompt; given the database's
    concepts (`known`, by key), every key must be one of them."""
    source, data = str(path), read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError([Problem(source, "file", "top level", "must be a non-empty list of rows")])
    rows, problems = [], []
    for i, row in enumerate(data):
        entry = f"row {i}"
        if not isinstance(row, list) or len(row) not in (3, 4):
            problems.append(Problem(source, entry, "row", "must be [image_path, [keys], caption, prompt]"))
            continue
        found = _key_problems(source, entry, row[1], bucket, known)
        for n, field in ((0, "image_path"), (2, "caption"), (3, "prompt")):
            if n < len(row) and not isinstance(row[n], str):
                found.append(Problem(source, entry, field, f"must be a string, got {type(row[n]).__name__}"))
        problems += found
        if not found:
            rows.append(CaptionRow(row[0], tuple(row[1]), row[2], row[3] if len(row) == 4 else None))
    if problems:
        raise DataError(problems)
    return rows
